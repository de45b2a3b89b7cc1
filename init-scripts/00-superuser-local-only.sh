# dbaas: the superuser logs in only over the container's local socket, never
# over TCP (so never through the published port). Sourced by the entrypoint
# at the first initialisation, before the server listens on the network.
# The dbaas image's initdb writes the line already: checked with builtins,
# so that a create starts no program for it.
hba_line="host all ${POSTGRES_USER:-postgres} all reject"
hba_text=$(<"$PGDATA/pg_hba.conf")
[[ $'\n'$hba_text$'\n' == *$'\n'"$hba_line"$'\n'* ]] || sed -i "1i $hba_line" "$PGDATA/pg_hba.conf"
unset hba_line hba_text
