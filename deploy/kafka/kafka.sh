#!/usr/bin/env bash
# Real Apache Kafka (KRaft) from Maven Central jars, no Docker.
#
#   kafka.sh fetch                 copy broker + tools jars into deploy/kafka/lib (no-op once done)
#   kafka.sh start|stop|status     single node, 127.0.0.1:${KAFKA_PORT:-9092}
#   kafka.sh topics ARGS...        org.apache.kafka.tools.TopicCommand --bootstrap-server ... ARGS
#   kafka.sh groups ARGS...        ConsumerGroupCommand --bootstrap-server ... ARGS
#   kafka.sh cluster-start|cluster-stop|cluster-status|cluster-bootstrap
#   kafka.sh cluster-kill-node N|cluster-start-node N      (N = 1, 2 or 3)
#   kafka.sh secure-start          single node with SASL_SSL (SCRAM-SHA-512), TLS and ACLs (stop/status as above)
#   kafka.sh secure-cluster-start  the 3-node cluster, secured the same way (cluster-* commands as above)
#   kafka.sh acls ARGS...          org.apache.kafka.tools.AclCommand --bootstrap-server ... ARGS
#
# On a secured node or cluster, topics/groups/acls run as the admin principal (secrets/admin.properties).
# See deploy/README.md for the environment variables.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LIB=$HERE/lib
RUN_DIR=${TICKETFLOW_RUN_DIR:-$REPO/var}
DEFAULT_VERSION=4.4.0
FALLBACK_VERSION=4.3.1
JAVA=${JAVA:-java}
if [[ -n "${JAVA_HOME:-}" && "$JAVA" == java ]]; then JAVA=$JAVA_HOME/bin/java; fi

PORT=${KAFKA_PORT:-9092}
CPORT=${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
CLUSTER_BASE=${KAFKA_CLUSTER_BASE_PORT:-19092}
CLUSTER_CBASE=${KAFKA_CLUSTER_CONTROLLER_BASE_PORT:-$((CLUSTER_BASE + 100))}
CLUSTER_DIR=$RUN_DIR/kafka-cluster
START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

# shellcheck source=deploy/kafka/secure.sh
source "$HERE/secure.sh"

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )); }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Who holds a port (best effort, for error messages).
port_holder() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:(\(.*\))/\1/p' | head -1
  elif command -v fuser >/dev/null 2>&1; then
    fuser -n tcp "$1" 2>/dev/null | xargs -r ps -o pid=,args= -p 2>/dev/null | head -1
  fi
}

# ---------------------------------------------------------------- fetch

fetched_version() {
  local m
  for m in "$LIB"/.fetched-*; do
    [[ -e "$m" ]] || continue
    echo "${m##*/.fetched-}"
    return 0
  done
  return 1
}

cmd_fetch() {
  local want=${KAFKA_VERSION:-} have
  if have=$(fetched_version) && [[ -z "$want" || "$want" == "$have" ]]; then
    [[ "${1:-}" == quiet ]] || echo "kafka $have jars already in $LIB"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install -y maven)"
  mkdir -p "$RUN_DIR"
  # Serialise concurrent fetches (e.g. two start commands at once).
  exec 9>"$RUN_DIR/.kafka-fetch.lock"
  flock 9
  if have=$(fetched_version) && [[ -z "$want" || "$want" == "$have" ]]; then
    flock -u 9; return 0
  fi
  local tmp=$LIB.tmp.$$ out version
  local -a versions
  if [[ -n "$want" ]]; then versions=("$want"); else versions=("$DEFAULT_VERSION" "$FALLBACK_VERSION"); fi
  for version in "${versions[@]}"; do
    log "fetching Apache Kafka $version jars from Maven Central into $LIB ..."
    rm -rf "$tmp"
    if out=$(cd "$HERE" && mvn -B -q -Dstyle.color=never -f "$HERE/pom.xml" dependency:copy-dependencies \
          -DincludeScope=runtime -DoutputDirectory="$tmp" -Dkafka.version="$version" 2>&1) \
       && ls "$tmp"/kafka_2.13-"$version".jar "$tmp"/kafka-tools-"$version".jar >/dev/null 2>&1; then
      touch "$tmp/.fetched-$version"
      rm -rf "$LIB"
      mv "$tmp" "$LIB"
      rm -rf "$HERE/target"
      flock -u 9
      echo "kafka $version jars fetched into $LIB ($(ls "$LIB"/*.jar | wc -l) jars)"
      return 0
    fi
    log "fetching kafka $version failed:"
    printf '%s\n' "$out" | tail -20 >&2
    rm -rf "$tmp"
  done
  flock -u 9
  die "could not fetch Kafka jars (tried: ${versions[*]})"
}

# ---------------------------------------------------------------- one node (shared by single and cluster mode)
# A node lives in a folder: server.properties, data/, kafka.pid, kafka.log.

node_pid() {
  local dir=$1 pid
  [[ -f "$dir/kafka.pid" ]] || return 1
  pid=$(cat "$dir/kafka.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

tail_log() {
  local dir=$1
  if [[ -s "$dir/kafka.log" ]]; then
    echo "----- last 30 lines of $dir/kafka.log -----" >&2
    tail -n 30 "$dir/kafka.log" >&2
    echo "-----" >&2
  fi
}

check_heap() {
  [[ "$1" =~ ^[0-9]+[kKmMgG]?$ ]] || die "KAFKA_HEAP='$1' is not a JVM heap size (e.g. 512m, 1g)"
}

# format_node DIR CLUSTER_ID [extra StorageTool args...]: once per data dir.
format_node() {
  local dir=$1 cid=$2; shift 2
  [[ -f "$dir/data/meta.properties" ]] && return 0
  mkdir -p "$dir/data"
  local out
  if ! out=$(run_tool kafka.tools.StorageTool format -t "$cid" -c "$dir/server.properties" "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die "formatting storage in $dir/data failed"
  fi
}

# run_tool MAIN_CLASS ARGS...: a short-lived JVM for the CLI tools.
run_tool() {
  local main=$1; shift
  # shellcheck disable=SC2086
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 ${KAFKA_TOOLS_JVM_OPTS:-} \
    -Dlog4j2.configurationFile="$HERE/tools-log4j2.properties" \
    -cp "$LIB/*" "$main" "$@"
}

# launch_node DIR HEAP: start the JVM in the background, detached from this shell.
launch_node() {
  local dir=$1 heap=$2
  [[ -f "$dir/kafka.log" ]] && mv -f "$dir/kafka.log" "$dir/kafka.log.1"
  rm -f "$dir/kafka.pid"
  # bash -c writes its own pid then execs java, so the pid file is the JVM's pid.
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$1/kafka.pid"; shift; exec "$@"' _ "$dir" \
    "$JAVA" "-Xmx$heap" -Xms128m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    ${KAFKA_JVM_OPTS:-} \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
    -cp "$LIB/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >"$dir/kafka.log" 2>&1 &
  local i
  for i in $(seq 50); do [[ -s "$dir/kafka.pid" ]] && return 0; sleep 0.05; done
  die "could not launch java (pid file $dir/kafka.pid not written)"
}

# wait_nodes TIMEOUT DIR:PORT...: until every node logged "Kafka Server started" and its port answers.
# Returns 1 (after printing why + log tail) when a JVM dies or the time is up.
wait_nodes() {
  local timeout=$1; shift
  local deadline=$((SECONDS + timeout)) spec dir port pending
  while :; do
    pending=0
    for spec in "$@"; do
      dir=${spec%:*}; port=${spec##*:}
      if ! node_pid "$dir" >/dev/null; then
        log "the Kafka JVM in $dir exited during start-up"
        tail_log "$dir"
        return 1
      fi
      if grep -q 'Kafka Server started' "$dir/kafka.log" 2>/dev/null && port_open "$port"; then
        continue
      fi
      pending=1
    done
    (( pending )) || return 0
    if (( SECONDS >= deadline )); then
      for spec in "$@"; do
        dir=${spec%:*}; port=${spec##*:}
        grep -q 'Kafka Server started' "$dir/kafka.log" 2>/dev/null && port_open "$port" && continue
        log "Kafka in $dir not up on port $port after ${timeout}s"
        tail_log "$dir"
      done
      return 1
    fi
    sleep 0.5
  done
}

# stop_nodes DIR...: SIGTERM all, wait up to STOP_TIMEOUT, then SIGKILL.
stop_nodes() {
  local dir pid any=0 deadline
  local -a pids=()
  for dir in "$@"; do
    if pid=$(node_pid "$dir"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); any=1
    fi
  done
  (( any )) || return 1
  deadline=$((SECONDS + STOP_TIMEOUT))
  while (( SECONDS < deadline )); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    (( alive )) || break
    sleep 0.3
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid still alive after ${STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
  for dir in "$@"; do rm -f "$dir/kafka.pid"; done
  return 0
}

# Properties shared by single node and cluster nodes.
common_props() {
  cat <<EOF
process.roles=broker,controller
controller.listener.names=CONTROLLER
num.partitions=3
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=${KAFKA_OFFSETS_PARTITIONS:-10}
transaction.state.log.num.partitions=${KAFKA_OFFSETS_PARTITIONS:-10}
share.coordinator.state.topic.num.partitions=${KAFKA_OFFSETS_PARTITIONS:-10}
log.retention.hours=168
EOF
}

# listener_props HOME MODE: how the listeners are secured (plain: PLAINTEXT everywhere).
listener_props() {
  if [[ "$2" == secure ]]; then
    secure_props "$1"
  else
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  fi
}

# client_listener MODE: the name of the listener clients use (CLIENT when secured).
client_listener() { if [[ "$1" == secure ]]; then echo CLIENT; else echo PLAINTEXT; fi; }

# ---------------------------------------------------------------- single node

single_dir() { echo "$RUN_DIR/kafka-$PORT"; }

write_single_props() {
  local dir=$1 mode=$2 name
  name=$(client_listener "$mode")
  (umask 077 && : >"$dir/server.properties")
  {
    echo "# generated by deploy/kafka/kafka.sh start: edits are overwritten on the next start"
    echo "node.id=1"
    echo "listeners=$name://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT"
    echo "advertised.listeners=$name://127.0.0.1:$PORT"
    echo "controller.quorum.bootstrap.servers=127.0.0.1:$CPORT"
    echo "log.dirs=$dir/data"
    common_props
    listener_props "$dir" "$mode"
    cat <<EOF
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
    if [[ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]]; then
      echo "# from KAFKA_EXTRA_PROPERTIES"
      printf '%s\n' "$KAFKA_EXTRA_PROPERTIES"
    fi
  } >"$dir/server.properties"
}

cmd_start() {
  local mode=${1:-plain}
  is_port "$PORT" || die "KAFKA_PORT='$PORT' is not a port"
  is_port "$CPORT" || die "KAFKA_CONTROLLER_PORT='$CPORT' is not a port"
  [[ "$PORT" != "$CPORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT are both $PORT"
  local heap=${KAFKA_HEAP:-512m} dir pid
  check_heap "$heap"
  dir=$(single_dir)
  refuse_mixed "$dir" "$dir/data" "$mode"
  if pid=$(node_pid "$dir"); then
    if port_open "$PORT"; then
      echo "kafka already running on 127.0.0.1:$PORT (pid $pid)"
      single_started "$dir" "$mode"
      return 0
    fi
    log "kafka pid $pid is alive but port $PORT does not answer yet: waiting"
    if wait_nodes "$START_TIMEOUT" "$dir:$PORT"; then
      echo "kafka up on 127.0.0.1:$PORT"; single_started "$dir" "$mode"; return 0
    fi
    die "kafka (pid $pid) did not come up; try: $0 stop && $0 start"
  fi
  local p
  for p in "$PORT" "$CPORT"; do
    if port_open "$p"; then
      die "port 127.0.0.1:$p is already in use by another process ($(port_holder "$p" || true)); \
set KAFKA_PORT/KAFKA_CONTROLLER_PORT or stop that process"
    fi
  done
  cmd_fetch quiet
  mkdir -p "$dir"
  [[ "$mode" == secure ]] && prepare_secured "$dir"
  write_single_props "$dir" "$mode"
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local cid
    cid=$(run_tool kafka.tools.StorageTool random-uuid)
    if [[ "$mode" == secure ]]; then
      format_secured "$dir" "$cid" "$dir" --standalone
      echo SASL_SSL >"$dir/security"
    else
      format_node "$dir" "$cid" --standalone
    fi
  fi
  launch_node "$dir" "$heap"
  if ! wait_nodes "$START_TIMEOUT" "$dir:$PORT"; then
    stop_nodes "$dir" >/dev/null 2>&1 || true
    die "kafka failed to start on 127.0.0.1:$PORT (log: $dir/kafka.log)"
  fi
  echo "kafka up on 127.0.0.1:$PORT"
  single_started "$dir" "$mode"
}

# single_started DIR MODE: a secured node's client files, and where they are.
single_started() {
  [[ "$2" == secure ]] || return 0
  write_client_files "$1" "127.0.0.1:$PORT"
  report_secured "$1" "127.0.0.1:$PORT"
}

cmd_stop() {
  local dir
  dir=$(single_dir)
  if stop_nodes "$dir"; then
    echo "kafka on 127.0.0.1:$PORT stopped"
  else
    echo "kafka on 127.0.0.1:$PORT not running"
  fi
}

cmd_status() {
  local dir pid
  dir=$(single_dir)
  if pid=$(node_pid "$dir"); then
    if port_open "$PORT"; then
      echo "kafka running on 127.0.0.1:$PORT (pid $pid, run dir $dir)"
      return 0
    fi
    echo "kafka starting or unresponsive: pid $pid alive, port $PORT not answering"
    return 3
  fi
  echo "kafka stopped (port $PORT)"
  return 3
}

# topics/groups: add --bootstrap-server unless the caller gave one.
cmd_tool() {
  local main=$1; shift
  cmd_fetch quiet
  local a
  for a in "$@"; do
    if [[ "$a" == --bootstrap-server || "$a" == --bootstrap-server=* ]]; then
      run_tool "$main" "$@"; return
    fi
  done
  local target=${KAFKA_BOOTSTRAP:-127.0.0.1:$PORT} config
  if ! has_command_config "$@" && config=$(command_config_for "$target"); then
    run_tool "$main" --bootstrap-server "$target" --command-config "$config" "$@"; return
  fi
  run_tool "$main" --bootstrap-server "$target" "$@"
}

has_command_config() {
  local a
  for a in "$@"; do [[ "$a" == --command-config || "$a" == --command-config=* ]] && return 0; done
  return 1
}

# ---------------------------------------------------------------- cluster (3 nodes, one machine)

cluster_node_dir() { echo "$CLUSTER_DIR/node-$1"; }
cluster_port() { echo $((CLUSTER_BASE + $1 - 1)); }
cluster_cport() { echo $((CLUSTER_CBASE + $1 - 1)); }
cluster_bootstrap() { echo "127.0.0.1:$(cluster_port 1),127.0.0.1:$(cluster_port 2),127.0.0.1:$(cluster_port 3)"; }

check_node_arg() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "node must be 1, 2 or 3 (got '${1:-}')"
}

write_cluster_props() {
  local n=$1 mode=$2 dir voters name
  dir=$(cluster_node_dir "$n")
  name=$(client_listener "$mode")
  voters="1@127.0.0.1:$(cluster_cport 1),2@127.0.0.1:$(cluster_cport 2),3@127.0.0.1:$(cluster_cport 3)"
  mkdir -p "$dir"
  (umask 077 && : >"$dir/server.properties")
  {
    echo "# generated by deploy/kafka/kafka.sh cluster-start: edits are overwritten on the next start"
    echo "node.id=$n"
    echo "listeners=$name://127.0.0.1:$(cluster_port "$n"),CONTROLLER://127.0.0.1:$(cluster_cport "$n")"
    echo "advertised.listeners=$name://127.0.0.1:$(cluster_port "$n")"
    echo "controller.quorum.voters=$voters"
    echo "log.dirs=$dir/data"
    common_props
    listener_props "$CLUSTER_DIR" "$mode"
    cat <<EOF
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
EOF
    if [[ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]]; then
      echo "# from KAFKA_EXTRA_PROPERTIES"
      printf '%s\n' "$KAFKA_EXTRA_PROPERTIES"
    fi
  } >"$dir/server.properties"
}

# Prepare (props + format) node N in MODE; fails if its ports are held by something else.
cluster_prepare_node() {
  local n=$1 mode=$2 dir cid p
  dir=$(cluster_node_dir "$n")
  for p in "$(cluster_port "$n")" "$(cluster_cport "$n")"; do
    if port_open "$p"; then
      die "cluster node $n: port 127.0.0.1:$p is already in use by another process ($(port_holder "$p" || true)); \
set KAFKA_CLUSTER_BASE_PORT/KAFKA_CLUSTER_CONTROLLER_BASE_PORT or stop that process"
    fi
  done
  write_cluster_props "$n" "$mode"
  if [[ ! -f "$CLUSTER_DIR/cluster.id" ]]; then
    run_tool kafka.tools.StorageTool random-uuid >"$CLUSTER_DIR/cluster.id"
  fi
  cid=$(cat "$CLUSTER_DIR/cluster.id")
  # Static quorum (controller.quorum.voters): every node formatted with the same cluster id.
  if [[ "$mode" == secure ]]; then
    format_secured "$dir" "$cid" "$CLUSTER_DIR"
  else
    format_node "$dir" "$cid"
  fi
}

# cluster_mode: how the cluster folder was formatted (secure or plain).
cluster_mode() { if is_secured "$CLUSTER_DIR"; then echo secure; else echo plain; fi; }

# cluster_refuse_mixed MODE: no node of the folder was formatted the other way.
cluster_refuse_mixed() {
  local n
  for n in 1 2 3; do refuse_mixed "$CLUSTER_DIR" "$(cluster_node_dir "$n")/data" "$1"; done
}

# cluster_started MODE: a secured cluster's client files, and where they are.
cluster_started() {
  [[ "$1" == secure ]] || return 0
  write_client_files "$CLUSTER_DIR" "$(cluster_bootstrap)"
  report_secured "$CLUSTER_DIR" "$(cluster_bootstrap)"
}

cluster_check_ports() {
  is_port "$CLUSTER_BASE" || die "KAFKA_CLUSTER_BASE_PORT='$CLUSTER_BASE' is not a port"
  is_port "$CLUSTER_CBASE" || die "KAFKA_CLUSTER_CONTROLLER_BASE_PORT='$CLUSTER_CBASE' is not a port"
  (( CLUSTER_CBASE > CLUSTER_BASE + 2 || CLUSTER_CBASE + 2 < CLUSTER_BASE )) \
    || die "broker ports $CLUSTER_BASE.. and controller ports $CLUSTER_CBASE.. overlap"
}

cmd_cluster_start() {
  local mode=${1:-plain}
  cluster_check_ports
  cluster_refuse_mixed "$mode"
  local heap=${KAFKA_HEAP:-384m} n dir
  check_heap "$heap"
  local -a started=() specs=()
  for n in 1 2 3; do
    dir=$(cluster_node_dir "$n")
    node_pid "$dir" >/dev/null || started+=("$n")
    specs+=("$dir:$(cluster_port "$n")")
  done
  if (( ${#started[@]} == 0 )) && port_open "$(cluster_port 1)" && port_open "$(cluster_port 2)" \
      && port_open "$(cluster_port 3)"; then
    echo "kafka cluster already running: $(cluster_bootstrap)"
    cluster_started "$mode"
    return 0
  fi
  cmd_fetch quiet
  mkdir -p "$CLUSTER_DIR"
  [[ "$mode" == secure ]] && prepare_secured "$CLUSTER_DIR"
  for n in "${started[@]}"; do cluster_prepare_node "$n" "$mode"; done
  [[ "$mode" == secure ]] && echo SASL_SSL >"$CLUSTER_DIR/security"
  # Launch all before waiting: a controller quorum needs a majority to elect a leader.
  for n in "${started[@]}"; do launch_node "$(cluster_node_dir "$n")" "$heap"; done
  if ! wait_nodes "$START_TIMEOUT" "${specs[@]}"; then
    local -a dirs=()
    for n in "${started[@]}"; do dirs+=("$(cluster_node_dir "$n")"); done
    stop_nodes "${dirs[@]}" >/dev/null 2>&1 || true
    die "kafka cluster failed to start (logs: $CLUSTER_DIR/node-*/kafka.log)"
  fi
  echo "kafka cluster up: $(cluster_bootstrap)"
  cluster_started "$mode"
}

cmd_cluster_stop() {
  if stop_nodes "$(cluster_node_dir 1)" "$(cluster_node_dir 2)" "$(cluster_node_dir 3)"; then
    echo "kafka cluster stopped"
  else
    echo "kafka cluster not running"
  fi
}

cmd_cluster_status() {
  local n dir pid up=0
  for n in 1 2 3; do
    dir=$(cluster_node_dir "$n")
    if pid=$(node_pid "$dir") && port_open "$(cluster_port "$n")"; then
      echo "node $n: running on 127.0.0.1:$(cluster_port "$n") (pid $pid)"
      up=$((up + 1))
    elif [[ -n "${pid:-}" ]]; then
      echo "node $n: starting or unresponsive (pid $pid, port $(cluster_port "$n"))"
    else
      echo "node $n: stopped (port $(cluster_port "$n"))"
    fi
    pid=
  done
  echo "bootstrap: $(cluster_bootstrap)"
  (( up == 3 )) && return 0
  (( up == 0 )) && return 3
  return 4
}

cmd_cluster_kill_node() {
  check_node_arg "${1:-}"
  local dir pid
  dir=$(cluster_node_dir "$1")
  if pid=$(node_pid "$dir"); then
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$dir/kafka.pid"
    echo "cluster node $1 killed (SIGKILL, pid $pid)"
  else
    echo "cluster node $1 not running"
  fi
}

cmd_cluster_start_node() {
  check_node_arg "${1:-}"
  cluster_check_ports
  local n=$1 heap=${KAFKA_HEAP:-384m} dir
  check_heap "$heap"
  dir=$(cluster_node_dir "$n")
  if node_pid "$dir" >/dev/null && port_open "$(cluster_port "$n")"; then
    echo "cluster node $n already running on 127.0.0.1:$(cluster_port "$n")"
    return 0
  fi
  cmd_fetch quiet
  mkdir -p "$CLUSTER_DIR"
  node_pid "$dir" >/dev/null || { cluster_prepare_node "$n" "$(cluster_mode)"; launch_node "$dir" "$heap"; }
  if ! wait_nodes "$START_TIMEOUT" "$dir:$(cluster_port "$n")"; then
    stop_nodes "$dir" >/dev/null 2>&1 || true
    die "cluster node $n failed to start (log: $dir/kafka.log)"
  fi
  echo "cluster node $n up on 127.0.0.1:$(cluster_port "$n")"
}

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    fetch) cmd_fetch ;;
    start) cmd_start plain ;;
    secure-start) cmd_start secure ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    topics) cmd_tool org.apache.kafka.tools.TopicCommand "$@" ;;
    groups) cmd_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@" ;;
    acls) cmd_tool org.apache.kafka.tools.AclCommand "$@" ;;
    cluster-start) cmd_cluster_start plain ;;
    secure-cluster-start) cmd_cluster_start secure ;;
    cluster-stop) cmd_cluster_stop ;;
    cluster-status) cmd_cluster_status ;;
    cluster-bootstrap) cluster_bootstrap ;;
    cluster-kill-node) cmd_cluster_kill_node "$@" ;;
    cluster-start-node) cmd_cluster_start_node "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
