// mongosh --host db1 ops/mongodb/rs-init.js  -- once, on a new cluster.
rs.initiate({
  _id: "rs0",
  members: [
    { _id: 0, host: "db1:27017" },
    { _id: 1, host: "db2:27017" },
    { _id: 2, host: "db3:27017" },
  ],
});
// Then create the application's user (replace the password):
// db.getSiblingDB("admin").createUser({user: "checkout", pwd: "...",
//   roles: [{role: "readWrite", db: "shop"}]});
