# dbaas: the superuser logs in only over the container's local socket, never
# over TCP (so never through the published port). Sourced by the entrypoint
# at the first initialisation, before the server listens on the network.
sed -i "1i host all ${POSTGRES_USER:-postgres} all reject" "$PGDATA/pg_hba.conf"
