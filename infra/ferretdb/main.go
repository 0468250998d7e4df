// Command ferretdb-embedded runs FerretDB v1 with its SQLite backend as a local MongoDB.
//
// The upstream cmd/ferretdb panics at start when built outside its repository (missing
// version file), so carbonpipe embeds the library instead and exposes just two flags.
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
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		log.Fatalf("ferretdb-embedded: bad -log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	abs, err := filepath.Abs(*dir)
	if err != nil {
		log.Fatalf("ferretdb-embedded: bad -dir: %v", err)
	}
	if err = os.MkdirAll(abs, 0o755); err != nil {
		log.Fatalf("ferretdb-embedded: cannot create %s: %v", abs, err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *addr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		log.Fatalf("ferretdb-embedded: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("ferretdb-embedded: listening on %s, data in %s\n", *addr, abs)
	if err = f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatalf("ferretdb-embedded: %v", err)
	}
	fmt.Println("ferretdb-embedded: stopped")
}
