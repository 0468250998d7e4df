// carbonpipe's MongoDB user in docker-compose: readWrite on its own database, nothing else.
// mongod runs this once, on the first start of an empty volume (docker-entrypoint-initdb.d),
// as the root user from MONGO_INITDB_ROOT_*; the names come from .env (see .env.example).
db.getSiblingDB("admin").createUser({
  user: process.env.MONGO_APP_USERNAME,
  pwd: process.env.MONGO_APP_PASSWORD,
  roles: [{ role: "readWrite", db: process.env.MONGO_APP_DB || "carbonpipe" }],
});
