"""The Avro contracts: the ``.avsc`` catalog, its registration and checks, and its docs."""
