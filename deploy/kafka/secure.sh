# Sourced by kafka.sh: the secured modes (secure-start, secure-cluster-start).
#
# A secured run folder ("home": <run>/kafka-<port> or <run>/kafka-cluster) holds:
#   security              marker: this folder was formatted secured (plain `start` refuses it)
#   tls/ca.pem            the self-signed CA clients trust (KAFKA_SSL_CA_FILE)
#   tls/broker.pem        the brokers' key and certificate (CN=broker, SAN IP:127.0.0.1, DNS:localhost), 0600
#   secrets/passwords     name=password per SCRAM user, generated once, 0600, never printed
#   secrets/NAME.env      Ticketflow's settings for principal NAME (KAFKA_* variables), 0600
#   secrets/NAME.properties  the same for Java clients (kafka.sh topics|groups|acls, --command-config)
#
# Listeners:
#   CLIENT      SASL_SSL, SCRAM-SHA-512: every client, and the brokers among themselves (inter-broker,
#               as the SCRAM user `broker`)
#   CONTROLLER  SSL with required client certificates: only holders of tls/broker.pem (the brokers and
#               controllers, principal `broker` by ssl.principal.mapping.rules); on loopback
# Authorization: StandardAuthorizer, allow.everyone.if.no.acl.found=false, super.users = admin (operations)
# and broker (the cluster's own identity). Every other principal gets only what `ticketflow acls apply` grants.

SECURE_PRINCIPALS=(admin inbound ticketing sync agents subscriber channels)
BROKER_USER=broker
SCRAM=SCRAM-SHA-512

is_secured() { [[ -f "$1/security" ]]; }

# refuse_mixed HOME DATA_DIR MODE: a folder formatted one way is not started the other way.
refuse_mixed() {
  local home=$1 data=$2 mode=$3
  if [[ "$mode" == secure ]] && [[ -f "$data/meta.properties" ]] && ! is_secured "$home"; then
    die "$home was formatted without security: stop it and delete the folder (or use another port or run dir)"
  fi
  if [[ "$mode" == plain ]] && is_secured "$home"; then
    die "$home was formatted secured: start it with the secure-* command (or stop it and delete the folder)"
  fi
}

# ensure_tls HOME: a CA and the brokers' certificate, generated once per folder with openssl.
ensure_tls() {
  local tls=$1/tls
  [[ -s "$tls/broker.pem" && -s "$tls/ca.pem" ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "openssl not found (apt-get install -y openssl)"
  mkdir -p "$tls"
  chmod 700 "$tls"
  local out
  if ! out=$( (
      set -e
      umask 077
      cd "$tls"
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
        -keyout ca.key -out ca.pem -subj "/CN=Ticketflow local CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout broker.key -out broker.csr -subj "/CN=$BROKER_USER"
      printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >broker.ext
      openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 12)" \
        -days 825 -extfile broker.ext -out broker.crt
      cat broker.key broker.crt >broker.pem
      rm -f broker.csr broker.ext
      chmod 644 ca.pem
    ) 2>&1 ); then
    printf '%s\n' "$out" >&2
    die "generating the CA and broker certificate in $tls failed"
  fi
  chmod 755 "$tls"  # clients read ca.pem; the keys stay 0600
}

# ensure_passwords HOME: one random password per SCRAM user, kept for the folder's life (the storage is
# formatted with them). A folder formatted before a user existed cannot get it at format time: refuse.
ensure_passwords() {
  local home=$1 dir=$1/secrets name
  mkdir -p "$dir"
  chmod 700 "$dir"
  [[ -f "$dir/.gitignore" ]] || printf '*\n' >"$dir/.gitignore"
  (umask 077 && touch "$dir/passwords")
  for name in "$BROKER_USER" "${SECURE_PRINCIPALS[@]}"; do
    grep -q "^$name=" "$dir/passwords" && continue
    if is_secured "$home"; then
      die "$home was formatted before user '$name' existed; stop it and delete the folder to format again"
    fi
    echo "$name=$(openssl rand -hex 24)" >>"$dir/passwords"
  done
}

password_of() { sed -n "s/^$2=//p" "$1/secrets/passwords"; }

# secure_props HOME: the listener, TLS and authorizer lines of a secured node's server.properties.
secure_props() {
  local home=$1
  cat <<EOF
listener.security.protocol.map=CLIENT:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=CLIENT
sasl.enabled.mechanisms=$SCRAM
sasl.mechanism.inter.broker.protocol=$SCRAM
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$BROKER_USER" password="$(password_of "$home" "$BROKER_USER")";
ssl.keystore.type=PEM
ssl.keystore.location=$home/tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$home/tls/ca.pem
listener.name.controller.ssl.client.auth=required
listener.name.controller.ssl.principal.mapping.rules=RULE:^CN=([a-z]+)\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:$BROKER_USER
EOF
}

# format_secured DIR CLUSTER_ID HOME [StorageTool args...]: format with every SCRAM user. The passwords
# go through a Java argument file (0600, deleted afterwards), never on a command line `ps` shows.
format_secured() {
  local dir=$1 cid=$2 home=$3; shift 3
  [[ -f "$dir/data/meta.properties" ]] && return 0
  mkdir -p "$dir/data"
  local argfile=$home/secrets/format.args name arg out
  (
    umask 077
    printf '%s\n' kafka.tools.StorageTool format -t "$cid" -c "$dir/server.properties"
    for arg in "$@"; do printf '%s\n' "$arg"; done
    for name in "$BROKER_USER" "${SECURE_PRINCIPALS[@]}"; do
      printf '%s\n' --add-scram "$SCRAM=[name=$name,password=$(password_of "$home" "$name")]"
    done
  ) >"$argfile"
  # shellcheck disable=SC2086
  if ! out=$("$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 ${KAFKA_TOOLS_JVM_OPTS:-} \
      -Dlog4j2.configurationFile="$HERE/tools-log4j2.properties" -cp "$LIB/*" "@$argfile" 2>&1); then
    rm -f "$argfile"
    printf '%s\n' "$out" >&2
    die "formatting storage in $dir/data failed"
  fi
  rm -f "$argfile"
}

# write_client_files HOME BOOTSTRAP: per principal, NAME.env (Ticketflow) and NAME.properties (Java).
write_client_files() {
  local home=$1 bootstrap=$2 dir=$1/secrets name pw
  for name in "${SECURE_PRINCIPALS[@]}"; do
    pw=$(password_of "$home" "$name")
    (
      umask 077
      cat >"$dir/$name.env" <<EOF
KAFKA_BOOTSTRAP_SERVERS=$bootstrap
KAFKA_SECURITY_PROTOCOL=SASL_SSL
KAFKA_SASL_MECHANISM=$SCRAM
KAFKA_USERNAME=$name
KAFKA_PASSWORD=$pw
KAFKA_SSL_CA_FILE=$home/tls/ca.pem
EOF
      cat >"$dir/$name.properties" <<EOF
bootstrap.servers=$bootstrap
security.protocol=SASL_SSL
sasl.mechanism=$SCRAM
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$name" password="$pw";
ssl.truststore.type=PEM
ssl.truststore.location=$home/tls/ca.pem
EOF
    )
  done
}

# prepare_secured HOME: TLS material and passwords (before the first format).
prepare_secured() {
  ensure_tls "$1"
  ensure_passwords "$1"
}

# report_secured HOME BOOTSTRAP: what a client needs, passwords left in their files.
report_secured() {
  local home=$1 name
  echo "bootstrap: $2 (SASL_SSL, $SCRAM; CA $home/tls/ca.pem)"
  echo "client settings per principal (mode 0600, passwords inside, never printed):"
  for name in "${SECURE_PRINCIPALS[@]}"; do
    printf '  %-11s %s  %s\n' "$name" "$home/secrets/$name.env" "$home/secrets/$name.properties"
  done
  echo "then, as admin: (set -a; . $home/secrets/admin.env; set +a; ticketflow topics apply && ticketflow acls apply)"
}

# command_config_for BOOTSTRAP: the admin's properties when BOOTSTRAP is a secured folder's own.
command_config_for() {
  local target=$1
  if [[ -n "${KAFKA_COMMAND_CONFIG:-}" ]]; then echo "$KAFKA_COMMAND_CONFIG"; return 0; fi
  local home
  for home in "$(single_dir)" "$CLUSTER_DIR"; do
    if is_secured "$home" && [[ -f "$home/secrets/admin.properties" ]] \
        && grep -qx "bootstrap.servers=$target" "$home/secrets/admin.properties"; then
      echo "$home/secrets/admin.properties"
      return 0
    fi
  done
  return 1
}
