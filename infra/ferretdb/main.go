// Command ferretdb-embedded runs FerretDB v1 as a local MongoDB, on SQLite (the default,
// data in -dir) or on PostgreSQL (-handler=postgresql -postgresql-url=postgres://...).
//
// The upstream cmd/ferretdb panics at start when built outside its repository (missing
// version file), so carbonpipe embeds the library instead and exposes just a few flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on")
	dir := flag.String("dir", ".carbonpipe/ferretdb", "directory for the SQLite databases")
	level := flag.String("log-level", "warn", "debug, info, warn or error")
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	pgURL := flag.String("postgresql-url", "",
		"PostgreSQL connection string for -handler=postgresql, e.g. postgres://user@127.0.0.1:5432/ferretdb")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		log.Fatalf("ferretdb-embedded: bad -log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	cfg := ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *addr}, Logger: logger, Handler: *handler}
	where := ""
	switch *handler {
	case "sqlite":
		abs, err := filepath.Abs(*dir)
		if err != nil {
			log.Fatalf("ferretdb-embedded: bad -dir: %v", err)
		}
		if err = os.MkdirAll(abs, 0o755); err != nil {
			log.Fatalf("ferretdb-embedded: cannot create %s: %v", abs, err)
		}
		cfg.SQLiteURL = "file:" + abs + "/"
		where = "data in " + abs
	case "postgresql":
		if *pgURL == "" {
			log.Fatalf("ferretdb-embedded: -handler=postgresql needs -postgresql-url")
		}
		cfg.PostgreSQLURL = *pgURL
		where = "data in PostgreSQL"
	default:
		log.Fatalf("ferretdb-embedded: bad -handler %q: sqlite or postgresql", *handler)
	}

	f, err := ferretdb.New(&cfg)
	if err != nil {
		log.Fatalf("ferretdb-embedded: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("ferretdb-embedded: listening on %s (%s), %s\n", *addr, *handler, where)
	if err = f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatalf("ferretdb-embedded: %v", err)
	}
	fmt.Println("ferretdb-embedded: stopped")
}
