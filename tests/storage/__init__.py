"""What reaches InfluxDB and how: the schema, the spool, durability, several hosts."""
