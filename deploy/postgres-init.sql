-- One database per service (docker-compose.yml mounts this into the PostgreSQL container).
CREATE DATABASE node;
CREATE DATABASE server;
