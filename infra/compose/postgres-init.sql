-- The registry keeps its schemas in a database of its own.
CREATE DATABASE apicurio;
