#!/usr/bin/env bash
# The SSM agent runs this step as a script file, possibly with sh (dash on Debian and Ubuntu): re-run it with bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
# Flink Fleet Profiler node agent: profiles one Flink JobManager or TaskManager JVM on this node with
# async-profiler and prints the HTML flame graph, and where the node can convert a recording the same samples as
# collapsed stacks with thread frames and as the JFR recording itself (each gzip + base64), on stdout.
#
# Runs as root, as the script of the profiler's SSM Command document (locally: as a child process).
# Inputs come only from environment variables, never from arguments or shell text:
#   SSM_runId     run id, ^[A-Za-z0-9][A-Za-z0-9-]{0,63}$ (names the output file)
#   SSM_role      jobmanager | taskmanager
#   SSM_mode      CPU | ALLOC | LOCK | WALL | ITIMER
#   SSM_duration  seconds, 1..3600
#   SSM_pid       optional: the JVM to profile (else the single Flink JVM of that role on this node)
#   ASPROF                  optional path to asprof (else `asprof` on PATH, else /usr/local/bin/asprof or
#                           /opt/async-profiler/bin/asprof: SSM may run the script with a PATH without them)
#   FLINK_PROFILER_TMPDIR   optional base of the scratch directory (else ${TMPDIR:-/tmp}); it must belong to root
#                           (or the agent's own user) and be writable by no one else unless it has the sticky bit
#   FLINK_PROFILER_MAX_HTML_BYTES  optional limit on the size of each file sent: the flame graph, the collapsed stacks,
#                           the recording (default 64 MiB)
#
# Recording: where async-profiler's converter (lib/converter.jar next to lib/libasyncProfiler.so, root's) runs with
# the JVM's own java as the JVM's user, the session records JFR and the converter writes from that one recording the
# flame graph (as asprof would: no thread frames, asprof's title) and the collapsed stacks (`--threads --norm`).
# Elsewhere the session writes the flame graph itself, as before, and the message says why there is nothing else.
#
# Output protocol on stdout (everything else goes to stderr):
#   FLINK_PROFILER_RESULT status=FINISHED pid=<pid> mode=<MODE> sha256=<hex> bytes=<n>[ collapsed=<hex>:<n> jfr=<hex>:<n>] message=Profiling Successful[ (<note>)]
#   -----BEGIN FLINK PROFILE-----
#   <base64 of the gzipped HTML, 76 characters a line>
#   -----END FLINK PROFILE-----
#   -----BEGIN FLINK PROFILE collapsed-----      (these two only when collapsed= and jfr= are on the line)
#   <base64 of the gzipped collapsed stacks>
#   -----END FLINK PROFILE collapsed-----
#   -----BEGIN FLINK PROFILE jfr-----
#   <base64 of the gzipped JFR recording>
#   -----END FLINK PROFILE jfr-----
# (mode is the mode really profiled: a CPU run retried in ITIMER says mode=ITIMER and notes why in the message; each
# sha256/bytes pair is its gzip payload's digest and length)
# or the single line
#   FLINK_PROFILER_RESULT status=FAILED pid=<pid|-> mode=<MODE|-> message=<one line>
# with exit code 2 bad input, 3 asprof missing, 4 JVM not found / ambiguous / not a JVM, 5 start failed,
# 6 process exited during profiling, 7 stop or output failed or the flame graph is over the size limit (128+N when
# killed by signal N).
#
# Root never trusts what the JVM's user controls: asprof (and its library) must belong to root and be writable by no
# one else, along their whole path; the pid must still be the same process (start time) before each asprof call; and
# every file operation inside the directory the JVM writes to runs as the JVM's own user (setpriv, util-linux), with
# a time limit and a byte limit, so no link, FIFO or rename planted there makes root read, write, chown, delete or
# wait on anything else.
#
# Portable to bash 4.2 (Amazon Linux 2): no mapfile -d, no EPOCHREALTIME, no empty "${array[@]}" under set -u.
#
# The file is the SSM document's step as deployed (its lines are the step's runCommand): everything is a function,
# and `main` at the end runs them in order, so bash has read the whole file before anything runs.

set -euo pipefail
export LC_ALL=C
umask 077

# ---- BEGIN FLINK MAIN CLASSES (kept equal to the TypeScript list by a unit test) ----
JOBMANAGER_MAIN_CLASSES=(
  org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint
  org.apache.flink.container.entrypoint.StandaloneApplicationClusterEntryPoint
  org.apache.flink.yarn.entrypoint.YarnSessionClusterEntrypoint
  org.apache.flink.yarn.entrypoint.YarnJobClusterEntrypoint
  org.apache.flink.yarn.entrypoint.YarnApplicationClusterEntryPoint
  org.apache.flink.kubernetes.entrypoint.KubernetesSessionClusterEntrypoint
  org.apache.flink.kubernetes.entrypoint.KubernetesApplicationClusterEntrypoint
)
TASKMANAGER_MAIN_CLASSES=(
  org.apache.flink.runtime.taskexecutor.TaskManagerRunner
  org.apache.flink.yarn.YarnTaskExecutorRunner
  org.apache.flink.kubernetes.taskmanager.KubernetesTaskExecutorRunner
)
# ---- END FLINK MAIN CLASSES ----

readonly EXIT_BAD_INPUT=2 EXIT_NO_ASPROF=3 EXIT_NO_JVM=4 EXIT_START_FAILED=5 EXIT_PROCESS_EXITED=6 EXIT_STOP_FAILED=7
readonly ASPROF_TIMEOUT=60   # seconds one asprof call may take (attach included)
readonly FINISH_TIMEOUT=30   # seconds after the duration for the JVM to write the flame graph
readonly ASPROF_DEFAULT_LOCATIONS=(/usr/local/bin/asprof /opt/async-profiler/bin/asprof)
readonly MAX_HTML_BYTES_DEFAULT=$((64 * 1024 * 1024))
readonly FILE_TIMEOUT=10     # seconds one file operation as the JVM's user may take (a planted FIFO would block)
readonly READ_TIMEOUT=120    # seconds reading the flame graph back may take
readonly CONVERT_TIMEOUT=45  # seconds the conversions of the recording may take (they run side by side)
readonly CONVERTER_HEAP=512m # the converter's heap limit: its memory on the node stays bounded

# ---- State -----------------------------------------------------------------------------------------
# Set by the steps below and read by the result line, the failure mapping and the exit and signal handlers.

result_pid='-'
result_mode='-'
result_sent=0
success_message='Profiling Successful'
run_id='' role='' role_label='' mode='' event='' duration=''
main_classes=()
tmp_base=''
max_html_bytes=$MAX_HTML_BYTES_DEFAULT
asprof='' asprof_lib='' asprof_given=''
pid='' jvm_start_time='' jvm_uid='' jvm_gid='' jvm_groups=''
proc_role='' proc_class=''
scratch_dir='' out_dir='' out_file=''
converter='' java_bin='' converter_missing=''
asprof_out='' asprof_rc=0
start_attempted=0
start_failed=0
profile_done=0
sleep_pid=''

# ---- Messages --------------------------------------------------------------------------------------
# Each text that more than one step reports, defined once.

readonly START_FAILED='Start profiler failed.' STOP_FAILED='Stop profiler failed.'
readonly INSTALL_HINT='Install an async-profiler release on this node (its bin/asprof and lib/libasyncProfiler.so must stay side by side), then put bin/asprof on root'"'"'s PATH (for example: ln -s /opt/async-profiler/bin/asprof /usr/local/bin/asprof) or set ASPROF to its path.'

msg_exited_before() { printf 'Process %s exited before profiling started' "$pid"; }
msg_exited_during() { printf 'Process %s exited during profiling' "$pid"; }
msg_options_rejected() {
  printf 'asprof rejected the node agent'"'"'s options (%s): install an async-profiler release this agent supports (3.0 or later; 4.5 is tested)' "$1"
}

# ---- Output and failure ----------------------------------------------------------------------------

log() { printf '%s flink-profiler: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Prints the result line (status $1, message $2, and fields $3 before the message, if any) on the protocol's
# stdout, fd 3. It comes first on stdout, so SSM's own copy of the output's start holds it.
result_line() {
  printf 'FLINK_PROFILER_RESULT status=%s pid=%s mode=%s %smessage=%s\n' "$1" "$result_pid" "$result_mode" "${3:+$3 }" "$2" >&3
}

# Prints the FAILED line (once) and exits with the given code.
fail() {
  local code=$1 message=$2
  if [[ $result_sent == 0 ]]; then
    result_sent=1
    message=${message//[[:cntrl:]]/ }
    result_line FAILED "$message"
    log "FAILED: $message"
  fi
  exit "$code"
}

# Echoes untrusted input back only as a short string of harmless characters.
shown() {
  local v=${1:0:40}
  printf '%s' "${v//[^A-Za-z0-9._:\/ -]/?}"
}

# ---- Exit and signals ------------------------------------------------------------------------------

cleanup() {
  if [[ -n $sleep_pid ]]; then kill "$sleep_pid" 2>/dev/null || true; fi
  if [[ -n $scratch_dir ]]; then remove_scratch_dir "$scratch_dir" || true; fi
}

on_exit() {
  local rc=$?
  cleanup
  if [[ $result_sent == 0 ]]; then
    # An unexpected error (set -e): still answer with exactly one result line.
    [[ $rc != 0 ]] || rc=1
    result_sent=1
    result_line FAILED "Node agent failed unexpectedly (exit code $rc); see its stderr"
  fi
  exit "$rc"
}

on_signal() {
  local name=$1 code=$2
  trap - TERM INT HUP
  if [[ $start_attempted == 1 && $start_failed == 0 && $profile_done == 0 ]] && jvm_alive; then
    # Without this the profiler would keep sampling in the JVM until its --timeout.
    log "received SIG$name: stopping the profiler in process $pid"
    timeout -k 2 10 "$asprof" stop "$pid" >/dev/null 2>&1 3>&- || true
  fi
  fail "$code" "Profiling was cancelled (SIG$name)"
}

install_handlers() {
  trap on_exit EXIT
  trap 'on_signal TERM 143' TERM
  trap 'on_signal INT 130' INT
  trap 'on_signal HUP 129' HUP
}

# ---- Inputs ----------------------------------------------------------------------------------------

# Checks the SSM_<name> parameters (the first bad one fails the run) and sets the run's settings from them.
read_inputs() {
  local pid_in=${SSM_pid-} duration_in=${SSM_duration-}
  run_id=${SSM_runId-}
  role=${SSM_role-}
  mode=${SSM_mode-}

  case $mode in
    CPU | ALLOC | LOCK | WALL | ITIMER) result_mode=$mode ;;
    *) fail $EXIT_BAD_INPUT "Invalid mode '$(shown "$mode")': use one of CPU, ALLOC, LOCK, WALL, ITIMER" ;;
  esac
  if [[ -n $pid_in ]]; then
    if [[ ! $pid_in =~ ^[0-9]{1,10}$ ]] || ((10#$pid_in < 1 || 10#$pid_in > 4194304)); then
      fail $EXIT_BAD_INPUT "Invalid pid '$(shown "$pid_in")': use a process id (digits only) or leave it empty"
    fi
    pid=$((10#$pid_in))
    result_pid=$pid
  fi
  if [[ ! $run_id =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,63}$ ]]; then
    fail $EXIT_BAD_INPUT "Invalid run id '$(shown "$run_id")': use 1 to 64 letters, digits or dashes, starting with a letter or digit"
  fi
  case $role in
    jobmanager)
      role_label=JobManager
      main_classes=("${JOBMANAGER_MAIN_CLASSES[@]}")
      ;;
    taskmanager)
      role_label=TaskManager
      main_classes=("${TASKMANAGER_MAIN_CLASSES[@]}")
      ;;
    *) fail $EXIT_BAD_INPUT "Invalid role '$(shown "$role")': use jobmanager or taskmanager" ;;
  esac
  if [[ ! $duration_in =~ ^[0-9]{1,4}$ ]] || ((10#$duration_in < 1 || 10#$duration_in > 3600)); then
    fail $EXIT_BAD_INPUT "Invalid duration '$(shown "$duration_in")': use whole seconds from 1 to 3600"
  fi
  duration=$((10#$duration_in))
  event=${mode,,}
  # CPU asks for perf events by name. async-profiler 4.x's `cpu` silently falls back to ctimer (or even wall clock)
  # where the JVM's user may not open perf events, and the run would still say CPU; `cpu-clock` is the same perf event
  # (with kernel frames where allowed, user frames only under perf_event_paranoid=2) but fails instead, and the run is
  # then retried in ITIMER and says so.
  [[ $mode != CPU ]] || event=cpu-clock

  local max_in=${FLINK_PROFILER_MAX_HTML_BYTES-}
  if [[ -n $max_in ]]; then
    if [[ ! $max_in =~ ^[0-9]{1,12}$ ]] || ((10#$max_in < 1024)); then
      fail $EXIT_BAD_INPUT "Invalid FLINK_PROFILER_MAX_HTML_BYTES '$(shown "$max_in")' on this node: use a whole number of bytes, at least 1024, or leave it unset for $MAX_HTML_BYTES_DEFAULT"
    fi
    max_html_bytes=$((10#$max_in))
  fi

  tmp_base=${FLINK_PROFILER_TMPDIR:-${TMPDIR:-/tmp}}
  if [[ $tmp_base != /* || ! -d $tmp_base ]]; then
    fail $EXIT_BAD_INPUT "Scratch base directory '$(shown "$tmp_base")' (FLINK_PROFILER_TMPDIR or TMPDIR) is not an absolute path to a directory"
  fi
}

# ---- Trust in files --------------------------------------------------------------------------------
# Root runs asprof and writes in the scratch base: both must be out of reach of every other user, the directories
# above them included (a user who may rename a directory on the path can swap what is under it).

# Sets untrusted_reason to why a file with owner $1, mode $2 (octal) and type $3 (stat's %F) is not safe for this
# agent to trust, or to nothing when it is: it must belong to root (or the agent's own user) and be writable by no one
# else; a directory others may write passes only with the sticky bit (then they cannot rename or remove what is not
# theirs).
untrusted_reason=''
judge_trust() {
  local owner=$1 mode=$((8#$2)) type=$3
  untrusted_reason=''
  if [[ $owner != 0 && $owner != "$EUID" ]]; then
    untrusted_reason="belongs to uid $owner, not root"
  elif ((mode & 8#022)) && ! { [[ $type == directory ]] && ((mode & 8#1000)); }; then
    untrusted_reason=$(printf 'may be written by %s (mode %04o)' "$( ((mode & 8#002)) && printf 'every user' || printf 'its group')" "$mode")
  fi
}

# Prints why path $1 (a file or directory, not followed if a symlink) is not safe for this agent to trust, or nothing.
untrusted_because() {
  local owner mode type
  read -r owner mode type < <(stat -c '%u %a %F' -- "$1" 2>/dev/null) || {
    printf 'cannot be checked (stat failed)'
    return 0
  }
  judge_trust "$owner" "$mode" "$type"
  printf '%s' "$untrusted_reason"
}

# Prints the first of path $1 (resolved) and the directories above it that is not safe, with the reason, or nothing.
# One stat for the whole path (every run checks several): path by path only when stat could not answer for each.
first_untrusted_on_path() {
  local path=$1 i owner mode type reason
  local -a paths=() infos=()
  while :; do
    paths+=("${path:-/}")
    [[ -n $path ]] || break
    path=${path%/*}
  done
  mapfile -t infos < <(stat -c '%u %a %F' -- "${paths[@]}" 2>/dev/null || true)
  for i in "${!paths[@]}"; do
    if ((${#infos[@]} == ${#paths[@]})); then
      read -r owner mode type <<<"${infos[i]}"
      judge_trust "$owner" "$mode" "$type"
      reason=$untrusted_reason
    else
      reason=$(untrusted_because "${paths[i]}")
    fi
    if [[ -n $reason ]]; then
      printf '%s %s' "${paths[i]}" "$reason"
      return 0
    fi
  done
}

# The scratch base must be root's: a user who may rename entries in it could swap the scratch directory for a link.
check_scratch_base() {
  local real problem
  real=$(readlink -f -- "$tmp_base") ||
    fail $EXIT_BAD_INPUT "Scratch base directory '$(shown "$tmp_base")' (FLINK_PROFILER_TMPDIR or TMPDIR) cannot be resolved"
  problem=$(first_untrusted_on_path "$real")
  if [[ -n $problem ]]; then
    fail $EXIT_BAD_INPUT "Scratch base directory $real (FLINK_PROFILER_TMPDIR or TMPDIR) is not safe for the node agent: $problem. Make it (and each directory above it) belong to root and writable by no other user, or give it the sticky bit (chmod 1777, as /tmp has), or set FLINK_PROFILER_TMPDIR to such a directory"
  fi
  tmp_base=$real
}

# ---- asprof ----------------------------------------------------------------------------------------

# Sets asprof (ASPROF, else asprof on PATH, else a default location) and asprof_lib, the library next to it.
find_asprof() {
  local candidate asprof_real
  if [[ -n ${ASPROF-} ]]; then
    asprof=$ASPROF
    if [[ ! -f $asprof || ! -x $asprof ]]; then
      fail $EXIT_NO_ASPROF "async-profiler not found: ASPROF=$(shown "$asprof") is not an executable file. $INSTALL_HINT"
    fi
  else
    asprof=$(command -v asprof || true)
    if [[ $asprof != /* ]]; then
      # SSM's PATH for root may lack /usr/local/bin: also look where the README installs async-profiler.
      asprof=''
      for candidate in "${ASPROF_DEFAULT_LOCATIONS[@]}"; do
        if [[ -f $candidate && -x $candidate ]]; then
          asprof=$candidate
          break
        fi
      done
    fi
    if [[ -z $asprof ]]; then
      fail $EXIT_NO_ASPROF "async-profiler not found: no asprof on PATH or at ${ASPROF_DEFAULT_LOCATIONS[*]}, and ASPROF is not set. $INSTALL_HINT"
    fi
  fi
  asprof_real=$(readlink -f -- "$asprof")
  asprof_lib=${asprof_real%/*}/../lib/libasyncProfiler.so
  if [[ ! -f $asprof_lib ]]; then
    fail $EXIT_NO_ASPROF "async-profiler is incomplete: $asprof has no lib/libasyncProfiler.so next to its bin directory. $INSTALL_HINT"
  fi
  asprof_lib=$(readlink -f -- "$asprof_lib")
  check_asprof_trusted "$asprof_real" "$(readlink -f -- "${asprof_real%/*}/../lib")" "$asprof_lib"
  # From here on the real path: a link another user may change is never followed again.
  asprof_given=$asprof
  asprof=$asprof_real
}

# Root runs asprof, and asprof has the JVM load the library: each, with every directory above it, must be root's.
check_asprof_trusted() {
  local path problem
  for path in "$@"; do
    problem=$(first_untrusted_on_path "$path")
    if [[ -n $problem ]]; then
      fail $EXIT_NO_ASPROF "async-profiler at $asprof is not safe to run as root: $problem. Install it owned by root and writable by root only (for example: chown -R root:root /opt/async-profiler && chmod -R go-w /opt/async-profiler), and the same for each directory above it"
    fi
  done
}

# Runs asprof with a time limit; sets asprof_out (stdout + stderr) and asprof_rc. Right before it attaches, the pid
# must still be the JVM we checked (same start time): a pid the kernel gave to another process is never signalled.
run_asprof() {
  if ! jvm_alive; then
    if [[ $start_attempted == 1 ]]; then fail $EXIT_PROCESS_EXITED "$(msg_exited_during)"; fi
    fail $EXIT_PROCESS_EXITED "$(msg_exited_before)"
  fi
  asprof_rc=0
  asprof_out=$(timeout -k 5 "$ASPROF_TIMEOUT" "$asprof" "$@" 2>&1 3>&-) || asprof_rc=$?
}

# ---- Processes -------------------------------------------------------------------------------------

# Prints the main class of the java command line in /proc/$1/cmdline: the first argument after the launcher's
# options (skipping the value of those that take one, such as -cp x, -classpath x, --class-path x, -p x). Prints
# nothing for `-jar` (the main class is in the jar's manifest), `-m module` without a class, or an @argfile before
# the main class (the JVM's user controls that file's content, and root does not read it). Arguments after the main
# class are the program's: a Flink class name there does not count. Returns 1 when the cmdline cannot be read.
java_main_class() {
  local -a args=()
  local arg i=1
  [[ -r /proc/$1/cmdline ]] || return 1
  while IFS= read -r -d '' arg; do args+=("$arg"); done 2>/dev/null <"/proc/$1/cmdline" || true
  while ((i < ${#args[@]})); do
    arg=${args[i]}
    case $arg in
      -cp | -classpath | --class-path | -p | --module-path | --upgrade-module-path | --add-modules | --limit-modules | \
        --add-reads | --add-exports | --add-opens | --patch-module | --enable-native-access | --source)
        i=$((i + 2))
        ;;
      -m | --module | --module=*)
        if [[ $arg == --module=* ]]; then arg=${arg#--module=}; else arg=${args[i + 1]-}; fi
        if [[ $arg == */* ]]; then printf '%s' "${arg#*/}"; fi
        return 0
        ;;
      -jar | @*) return 0 ;;
      -*) i=$((i + 1)) ;;
      *)
        printf '%s' "$arg"
        return 0
        ;;
    esac
  done
}

# Sets proc_role (jobmanager|taskmanager|'') and proc_class from the main class of process $1 (see java_main_class).
# Returns 1 when the process cannot be read (gone, other user).
classify_process() {
  proc_role='' proc_class=''
  local main c
  main=$(java_main_class "$1") || return 1
  [[ $main == org.apache.flink.* ]] || return 0
  for c in "${JOBMANAGER_MAIN_CLASSES[@]}"; do
    if [[ $main == "$c" ]]; then proc_role=jobmanager proc_class=$c && return 0; fi
  done
  for c in "${TASKMANAGER_MAIN_CLASSES[@]}"; do
    if [[ $main == "$c" ]]; then proc_role=taskmanager proc_class=$c && return 0; fi
  done
  return 0
}

# Whether /proc/$1/maps shows libjvm.so. Returns 2 when the maps cannot be read.
is_jvm() {
  grep -qs -e "/libjvm\.so" "/proc/$1/maps"
}

# Prints field 22 (start time) of /proc/$1/stat; fails for a gone or zombie process.
proc_start_time() {
  local stat
  local -a fields
  IFS= read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  # Field 2 (comm) is in parentheses and may hold spaces: split after the last ')'.
  read -r -a fields <<<"${stat##*) }"
  [[ ${#fields[@]} -ge 20 && ${fields[0]} != Z && ${fields[0]} != X ]] || return 1
  printf '%s' "${fields[19]}"
}

# Same process as the one we started to profile: same pid and same start time (pids get reused).
jvm_alive() {
  local now
  [[ -n $pid && -n $jvm_start_time ]] || return 1
  now=$(proc_start_time "$pid") || return 1
  [[ $now == "$jvm_start_time" ]]
}

describe_process() {
  local comm='?' line=''
  IFS= read -r comm 2>/dev/null <"/proc/$1/comm" || true
  line=$(tr "\\0" " " 2>/dev/null <"/proc/$1/cmdline") || true
  line=${line% }
  ((${#line} <= 100)) || line="${line:0:100}..."
  printf '%s (%s)' "$(shown "$comm")" "${line//[^[:print:]]/?}"
}

role_label_of() { if [[ $1 == jobmanager ]]; then printf 'JobManager'; else printf 'TaskManager'; fi; }

# ---- Finding the JVM -------------------------------------------------------------------------------

# Checks that the given pid is a Flink JVM of the role, without ever attaching to anything else.
check_given_pid() {
  local tgid jvm_rc what
  # Taken before the checks: find_jvm then tells whether the process checked is still the one with this pid.
  if [[ ! -d /proc/$pid ]] || ! jvm_start_time=$(proc_start_time "$pid"); then
    fail $EXIT_NO_JVM "Process $pid not found on this node"
  fi
  # /proc also answers for thread ids, which are not listed there.
  tgid=$(sed -n 's/^Tgid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null) || tgid=''
  if [[ -n $tgid && $tgid != "$pid" ]]; then
    fail $EXIT_NO_JVM "$pid is a thread id of process $tgid, not a process id: pass $tgid"
  fi
  jvm_rc=0
  is_jvm "$pid" || jvm_rc=$?
  if [[ $jvm_rc == 2 ]]; then
    fail $EXIT_NO_JVM "Cannot read /proc/$pid/maps to check that process $pid is a JVM: run the node agent as root"
  elif [[ $jvm_rc != 0 ]]; then
    # Never attach here: the attach handshake sends SIGQUIT, which kills a process that is not a JVM.
    fail $EXIT_NO_JVM "Process $pid is not a Java process (no libjvm.so in its memory maps): $(describe_process "$pid"). Refusing to attach, which would kill it"
  fi
  classify_process "$pid" || fail $EXIT_NO_JVM "Cannot read the command line of process $pid: run the node agent as root"
  if [[ $proc_role != "$role" ]]; then
    if [[ -n $proc_role ]]; then
      what="a Flink $(role_label_of "$proc_role") ($proc_class)"
    else
      what="a Java process that is not a Flink JobManager or TaskManager: $(describe_process "$pid")"
    fi
    fail $EXIT_NO_JVM "Process $pid is not a Flink $role_label: it is $what"
  fi
}

# Sets pid to the one Flink JVM of the role on this node; fails when there is none or more than one.
find_only_jvm_of_role() {
  local proc_dir p jvm_rc message started
  local -a candidates=() start_times=() not_jvms=() unreadable=()
  for proc_dir in /proc/[0-9]*; do
    p=${proc_dir#/proc/}
    [[ $p != "$$" && $p != "$BASHPID" ]] || continue
    started=$(proc_start_time "$p") || continue
    classify_process "$p" || continue
    [[ $proc_role == "$role" ]] || continue
    # Wrappers (sudo, timeout, a JVM still starting) carry the class name too: only a JVM counts.
    jvm_rc=0
    is_jvm "$p" || jvm_rc=$?
    if [[ $jvm_rc == 2 ]]; then
      [[ ! -d /proc/$p ]] || unreadable+=("$p")
    elif [[ $jvm_rc == 0 ]] && [[ $(proc_start_time "$p" || true) == "$started" ]]; then
      candidates+=("$p")
      start_times+=("$started")
    else
      not_jvms+=("$p")
    fi
  done
  if [[ ${#candidates[@]} == 0 ]]; then
    message="No Flink $role_label JVM found on this node (looked for main classes ${main_classes[*]})"
    if [[ ${#not_jvms[@]} -gt 0 ]]; then
      message+="; processes ${not_jvms[*]} name such a class but are not (yet) JVMs"
    fi
    if [[ ${#unreadable[@]} -gt 0 ]]; then
      message+="; cannot read the memory maps of processes ${unreadable[*]} (run the node agent as root)"
    fi
    fail $EXIT_NO_JVM "$message"
  elif [[ ${#candidates[@]} -gt 1 ]]; then
    fail $EXIT_NO_JVM "Found ${#candidates[@]} Flink $role_label JVMs on this node (pids ${candidates[*]}): pass the pid of the one to profile"
  fi
  pid=${candidates[0]}
  jvm_start_time=${start_times[0]}
  result_pid=$pid
  classify_process "$pid" || true
}

# Sets pid (given or found) and jvm_start_time, which tells this JVM from a later process with its pid.
find_jvm() {
  if [[ -n $pid ]]; then
    check_given_pid
  else
    find_only_jvm_of_role
  fi
  # The same process from before the checks to now: its pid was not handed to another meanwhile.
  jvm_alive || fail $EXIT_PROCESS_EXITED "$(msg_exited_before)"
  log "profiling Flink $role_label pid $pid ($proc_class), mode $mode, ${duration}s, with $asprof_given ($asprof)"
}

# Another copy of the library clashes with ours on signals and timers while it profiles: Flink's built-in profiler
# (rest.profiling.enabled) loads its own, extracted to Flink's tmp dir and deleted once loaded. Ask each such copy
# whether it is profiling: `asprof --libpath <it> status` has the JVM load that path again, which finds the copy
# already loaded by name (even deleted) and runs its `status`. Refuse while one profiles.
refuse_while_another_profiler_runs() {
  local other_libs='' other_lib
  { other_libs=$(grep -o '/[^ ]*libasyncProfiler[^ ]*\.so' "/proc/$pid/maps" | sort -u | grep -vxF "$asprof_lib"); } 2>/dev/null || true
  while IFS= read -r other_lib; do
    [[ -n $other_lib ]] || continue
    run_asprof --libpath "$other_lib" status "$pid"
    if [[ $asprof_rc == 0 && $asprof_out == *[Pp]"rofiling is running"* ]]; then
      other_lib=${other_lib:0:200}
      fail $EXIT_START_FAILED "$START_FAILED Another async-profiler is profiling process $pid right now, most likely Flink's built-in profiler (rest.profiling.enabled; its library ${other_lib//[^A-Za-z0-9._:\/+@=-]/?}): wait until that profiling finishes and try again"
    elif [[ $asprof_rc == 0 ]]; then
      log "process $pid has another async-profiler library loaded ($other_lib, e.g. Flink's built-in profiler); it is not profiling now"
    else
      log "warning: process $pid has another async-profiler library loaded ($other_lib) that did not say whether it is profiling (exit $asprof_rc: ${asprof_out//$'\n'/ }); if it is, this run may fail or be skewed"
    fi
  done <<<"$other_libs"
}

# ---- Scratch directory -----------------------------------------------------------------------------

# Sets jvm_uid and jvm_gid, the JVM's effective ids; fails when this agent may not act for that user.
read_jvm_user() {
  local key effective
  jvm_uid='' jvm_gid=''
  while read -r key _ effective _; do
    case $key in
      Uid:) jvm_uid=$effective ;;
      Gid:) jvm_gid=$effective ;;
    esac
  done 2>/dev/null <"/proc/$pid/status" || true
  if [[ ! $jvm_uid =~ ^[0-9]+$ || ! $jvm_gid =~ ^[0-9]+$ ]]; then
    fail $EXIT_PROCESS_EXITED "$(msg_exited_before)"
  fi
  if [[ $EUID != 0 && $EUID != "$jvm_uid" ]]; then
    fail $EXIT_START_FAILED "$START_FAILED Process $pid runs as uid $jvm_uid: run the node agent as root or as that user"
  fi
}

# Runs a command as user $1 (uid) with group $2 and no supplementary groups (root: as itself). Whatever is inside the
# directory the JVM writes to is that user's to change at any moment, so root never opens, reads or removes anything
# there itself: the command can do no more than the JVM's user could, and `timeout` stops it if a FIFO blocks it.
as_user() {
  local uid=$1 gid=$2
  shift 2
  if [[ $EUID == 0 && $uid != 0 ]]; then
    setpriv --reuid="$uid" --regid="$gid" --clear-groups --no-new-privs -- "$@"
  else
    "$@"
  fi
}

as_jvm_user() { as_user "$jvm_uid" "$jvm_gid" "$@"; }

# Root switches to the JVM's user with setpriv (util-linux, on every Debian and Amazon Linux node).
require_setpriv() {
  if [[ $EUID == 0 && $jvm_uid != 0 ]] && ! command -v setpriv >/dev/null; then
    fail $EXIT_START_FAILED "$START_FAILED setpriv is not installed: the node agent reads the flame graph as the JVM's user (uid $jvm_uid) with setpriv from util-linux; install util-linux"
  fi
}

# Removes a scratch directory: what its out/ holds as out/'s owner (find -delete follows no link), then, as root,
# the directories and root's own files, which no other user can change (the scratch directory is root's, mode 0711).
remove_scratch_dir() {
  local dir=$1 owner='' group=''
  if [[ -d $dir/out && ! -L $dir/out ]]; then
    read -r owner group < <(stat -c '%u %g' -- "$dir/out") || true
    if [[ -n $owner ]]; then
      as_user "$owner" "$group" timeout -k 2 "$FILE_TIMEOUT" find "$dir/out" -mindepth 1 -delete 2>/dev/null || true
    fi
    rmdir -- "$dir/out" 2>/dev/null || log "could not remove $dir/out (still written to?); a later run removes it"
  fi
  rm -f -- "$dir/html.gz" "$dir/collapsed.gz" "$dir/jfr.gz" "$dir"/convert-*
  rmdir -- "$dir" 2>/dev/null || true
}

# A run killed with SIGKILL cannot clean up; its JVM still writes the file when --timeout ends (at most
# 60 min later), so a scratch directory unmodified for longer than that is left over. Only the agent's own
# directories (root's) are removed; anything another user put in the base is theirs.
remove_stale_scratch_dirs() {
  local dir
  while IFS= read -r -d '' dir; do
    remove_scratch_dir "$dir"
  done < <(find "$tmp_base" -mindepth 1 -maxdepth 1 -type d -user "$EUID" -name 'flink-profiler.*' -mmin +65 -print0 2>/dev/null || true)
}

# Whether the JVM's user may enter directory $1 (plain mode bits; needs jvm_groups).
jvm_can_search() {
  local owner group perms
  read -r owner group perms < <(stat -L -c '%u %g %a' -- "$1" 2>/dev/null) || return 1
  perms=$((8#$perms))
  if [[ $owner == "$jvm_uid" ]]; then
    ((perms & 8#100))
  elif [[ $jvm_groups == *" $group "* ]]; then
    ((perms & 8#010))
  else
    ((perms & 8#001))
  fi
}

# The JVM opens the output file itself, as its own user: each directory above the scratch directory must let that
# user through, or the profile would run for its whole duration and then have nowhere to go. (Plain mode bits: a
# directory opened to the user by an ACL only is refused here.)
check_jvm_can_reach_scratch_dir() {
  local key rest dir
  jvm_groups=" $jvm_gid "
  while read -r key rest; do
    if [[ $key == Groups: ]]; then jvm_groups+="$rest "; fi
  done 2>/dev/null <"/proc/$pid/status" || true
  [[ $jvm_uid != 0 ]] || return 0
  dir=$out_dir
  while [[ -n $dir ]]; do
    dir=${dir%/*}
    if ! jvm_can_search "${dir:-/}"; then
      fail $EXIT_START_FAILED "$START_FAILED The JVM's user (uid $jvm_uid) cannot enter ${dir:-/}, so it could not write the flame graph into $out_dir: set FLINK_PROFILER_TMPDIR (or TMPDIR) to a directory that every user can enter, such as /tmp"
    fi
  done
}

# Sets scratch_dir, a new directory of root's (mode 0711: the JVM's user may pass, not rename or add), out_dir in it,
# which the JVM's user owns (the JVM writes the profile there as that user), and out_file, the path of what the
# session writes (the recording, or the flame graph where nothing converts). Root's own compressed copies of what is
# sent go into the scratch directory itself. No other user can rename the scratch directory or out_dir: the base is
# root's (or sticky) and the scratch directory is root's.
make_scratch_dir() {
  scratch_dir=$(mktemp -d "$tmp_base/flink-profiler.XXXXXXXXXX") ||
    fail $EXIT_START_FAILED "$START_FAILED Could not create a scratch directory in $tmp_base"
  chmod 0711 -- "$scratch_dir"
  out_dir=$scratch_dir/out
  mkdir -m 0700 -- "$out_dir" || fail $EXIT_START_FAILED "$START_FAILED Could not create a scratch directory in $tmp_base"
  if [[ $EUID == 0 && $jvm_uid != 0 ]]; then
    chown -h "$jvm_uid:$jvm_gid" -- "$out_dir" ||
      fail $EXIT_START_FAILED "$START_FAILED Could not hand the scratch directory $out_dir to uid $jvm_uid"
  fi
  check_jvm_can_reach_scratch_dir
  if [[ -n $converter ]]; then out_file=$out_dir/$run_id.jfr; else out_file=$out_dir/$run_id.html; fi
}

# ---- Converter -------------------------------------------------------------------------------------

# Sets converter (async-profiler's converter jar, next to its library) and java_bin (the JVM's own java) when both
# are there and the java runs as the JVM's user; else sets converter_missing, why not. The converter only ever runs
# as the JVM's user, on the JVM's own files: it can do nothing that user could not.
find_converter() {
  local jar problem exe
  jar=${asprof_lib%/*}/converter.jar
  if [[ ! -f $jar || -L $jar ]]; then
    converter_missing="no async-profiler converter at $jar"
    return 0
  fi
  problem=$(untrusted_because "$jar")
  if [[ -n $problem ]]; then
    converter_missing="the converter $jar $problem"
    return 0
  fi
  exe=$(readlink -- "/proc/$pid/exe" 2>/dev/null) || exe=''
  # The converter without arguments prints its usage: a trial run that proves the java and the jar before the
  # session records anything (a recording nothing converts would be no flame graph).
  if [[ $exe != /* || $exe == *' (deleted)' ]] ||
    ! as_jvm_user timeout -k 2 "$FILE_TIMEOUT" env -i PATH=/usr/bin:/bin "$exe" -XX:TieredStopAtLevel=1 -cp "$jar" \
      one.convert.Main >/dev/null 2>&1 3>&-; then
    converter_missing="async-profiler's converter $jar does not run with the JVM's own java (${exe//[^[:print:]]/?}) as its user (uid $jvm_uid) here"
    return 0
  fi
  converter=$jar
  java_bin=$exe
}

# Starts the converter in the background as the JVM's user on the recording; $1 is root's file for its output and
# exit code (in the scratch directory, root's), the rest are its arguments. Sets converter_pid.
converter_pid=''
start_converter() {
  local log=$1
  shift
  {
    local rc=0
    as_jvm_user timeout -k 5 "$CONVERT_TIMEOUT" env -i PATH=/usr/bin:/bin "$java_bin" "-Xmx$CONVERTER_HEAP" \
      -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$converter" one.convert.Main "$@" >"$log" 2>&1 3>&- || rc=$?
    printf '%s' "$rc" >"$log.rc"
  } 3>&- &
  converter_pid=$!
}

# Fails the run when the conversion that wrote $2 (its log) failed; $1 says what it makes (for the message).
check_converter() {
  local what=$1 log=$2 rc out
  rc=$(head -c 8 -- "$log.rc" 2>/dev/null) || rc=''
  [[ $rc != 0 ]] || return 0
  out=$(head -c 2000 -- "$log" 2>/dev/null) || out=''
  out=${out//[[:cntrl:]]/ }
  ((${#out} <= 300)) || out="${out:0:300}..."
  if [[ $rc == 124 || $rc == 137 ]]; then
    fail $EXIT_STOP_FAILED "$STOP_FAILED async-profiler's converter did not write the $what within ${CONVERT_TIMEOUT}s: profile for a shorter duration"
  fi
  fail $EXIT_STOP_FAILED "$STOP_FAILED async-profiler's converter could not write the $what from the recording (exit ${rc:-unknown}): ${out:-no output}"
}

# Writes the flame graph (as asprof itself would: its title, no thread frames) and the collapsed stacks (a thread
# frame first on each line; hidden classes' and lambdas' names normalised, so runs of different JVMs compare) from
# the one recording, both at once: each is a JVM start, and the run waits for them.
convert_recording() {
  local events title html_pid collapsed_pid
  case $result_mode in
    ALLOC) events=--alloc title='Allocation profile' ;;
    LOCK) events=--lock title='Lock profile' ;;
    WALL) events=--wall title='Wall clock profile' ;;
    *) events=--cpu title='CPU profile' ;;
  esac
  start_converter "$scratch_dir/convert-html" "$events" --title "$title" -o html "$out_file" "$out_dir/$run_id.html"
  html_pid=$converter_pid
  start_converter "$scratch_dir/convert-collapsed" "$events" --threads --norm -o collapsed "$out_file" \
    "$out_dir/$run_id.collapsed"
  collapsed_pid=$converter_pid
  wait "$html_pid" "$collapsed_pid" || true
  check_converter 'flame graph' "$scratch_dir/convert-html"
  check_converter 'collapsed stacks' "$scratch_dir/convert-collapsed"
}

# ---- Mapping asprof failures -----------------------------------------------------------------------

# Prints a reason a user can act on for asprof's exit code $1 and output $2.
explain_asprof_failure() {
  local rc=$1 text=$2 detail
  detail=$(printf '%s\n' "$text" | sed -e 's/^\[ERROR\] //' | grep -v -e '^[[:space:]]*$' -e '^Profiling started$' | tr '\n' ' ') || true
  detail=${detail% }
  case $text in
    *"Perf events unavailable"* | *"No access to perf events"*)
      printf 'Perf events are unavailable on this node (%s). Use mode ITIMER, or allow perf events with sysctl kernel.perf_event_paranoid=1' "$detail" ;;
    *"No AllocTracer symbols found"*)
      printf 'ALLOC needs the JDK debug symbols (AllocTracer) on this JVM: install the debug symbols package of its JDK, or run Flink on JDK 11 or newer' ;;
    *"Profiler already started"*)
      printf 'Another profiling session is already running in process %s (another run of this profiler, a manual asprof, or Flink'"'"'s built-in profiler): wait until it finishes and try again' "$pid" ;;
    *"Failed to change credentials"*)
      printf 'asprof could not switch to the user of process %s (uid %s): run the node agent as root (%s)' "$pid" "$jvm_uid" "$detail" ;;
    *"Could not start attach mechanism"* | *"Could not connect to socket"* | *"Error writing to socket"* | *"Unexpected EOF reading response"*)
      printf 'Could not attach to process %s (%s). The JVM may run with -XX:+DisableAttachMechanism, a tmp cleaner may have deleted /tmp/.java_pid%s (restart the JVM to recreate it), or the JVM may use a private /tmp (container, systemd PrivateTmp)' "$pid" "$detail" "$pid" ;;
    *"Dynamic agent loading is not enabled"*)
      printf 'The JVM refuses dynamically loaded agents: start it with -XX:+EnableDynamicAgentLoading (%s)' "$detail" ;;
    *"Could not open output file"*)
      printf 'The JVM (uid %s) could not write %s: FLINK_PROFILER_TMPDIR (or TMPDIR, default /tmp) must be a directory the JVM'"'"'s user can reach, and for a JVM in a container or with a private /tmp one it shares' "$jvm_uid" "$out_file" ;;
    *"Process "*" not found"*)
      printf 'asprof could not find process %s although it runs (%s): run the node agent on the host or in the JVM'"'"'s own container, as root' "$pid" "$detail" ;;
    *"Only JFR output supports multiple events"* | *"Invalid interval"* | *"Duplicate event argument"*)
      msg_options_rejected "$detail" ;;
    *)
      case $rc in
        255) printf 'Process %s could not load %s: the library and its directories must be readable by the JVM'"'"'s user (uid %s) (%s)' "$pid" "$asprof_lib" "$jvm_uid" "${detail:-no details}" ;;
        124 | 137) printf 'asprof did not answer within %s seconds' "$ASPROF_TIMEOUT" ;;
        126 | 127) printf 'asprof at %s could not be run (%s)' "$asprof" "${detail:-exit code $rc}" ;;
        100) msg_options_rejected "${detail:-exit code 100}" ;;
        *) printf 'asprof failed with exit code %s: %s' "$rc" "${detail:-no output}" ;;
      esac ;;
  esac
}

# ---- Profiling -------------------------------------------------------------------------------------

nap() {
  sleep "$1" 3>&- &
  sleep_pid=$!
  wait "$sleep_pid" || true
  sleep_pid=''
}

# --timeout makes the agent inside the JVM stop and write the file by itself, so a profile never keeps
# running when this script is killed (SSM timeout or cancel sends SIGKILL).
start_profiler() {
  local -a format=()
  if [[ -n $converter ]]; then format=(-o jfr); fi
  run_asprof start -e "$event" --timeout "$duration" "${format[@]}" -f "$out_file" "$pid"
  if [[ -n $asprof_out ]]; then printf '%s\n' "$asprof_out" | sed 's/^/asprof: /' >&2; fi
}

# Starts the profiler in the JVM; fails with the reason when it does not start.
start_profiling() {
  local fallback_reason cpu_failure
  start_attempted=1
  start_profiler
  # Where the JVM may not open perf events (perf_event_paranoid, seccomp in containers), CPU is profiled in ITIMER,
  # as Flink's docs recommend then: the result line says mode=ITIMER and the message why.
  if [[ $asprof_rc != 0 && $mode == CPU && ($asprof_out == *"Perf events"* || $asprof_out == *"perf events"*) ]]; then
    if [[ $asprof_out == *"resource limit"* ]]; then
      fallback_reason="perf events hit the JVM's open-file limit (ulimit -n) on this node"
    else
      fallback_reason='perf events unavailable on this node'
    fi
    log "CPU mode cannot use perf events ($fallback_reason): profiling in ITIMER mode instead"
    cpu_failure=$asprof_out
    event=itimer
    result_mode=ITIMER
    success_message="Profiling Successful (CPU fell back to ITIMER: $fallback_reason)"
    start_profiler
    # Both failed: explain the CPU failure, the one the user asked for.
    if [[ $asprof_rc != 0 && $asprof_out == *"erf events"* ]]; then asprof_out=$cpu_failure; fi
  fi
  if [[ $asprof_rc != 0 ]]; then
    start_failed=1
    jvm_alive || fail $EXIT_PROCESS_EXITED "$START_FAILED $(msg_exited_during)"
    fail $EXIT_START_FAILED "$START_FAILED $(explain_asprof_failure "$asprof_rc" "$asprof_out")"
  fi
}

# Waits out the duration, failing as soon as the JVM is gone.
wait_for_duration() {
  local elapsed
  for ((elapsed = 0; elapsed < duration; elapsed++)); do
    nap 1
    jvm_alive || fail $EXIT_PROCESS_EXITED "$(msg_exited_during)"
  done
}

# Prints the type, size, link count and owner of file $1 in out/, as the JVM's user sees it (no link followed); fails
# when there is none.
file_info() {
  as_jvm_user timeout -k 2 "$FILE_TIMEOUT" stat -c '%F|%s|%h|%u' -- "$1" 2>/dev/null
}

# What each file the agent sends is, in its messages.
describe_file() {
  case $1 in
    *.html) printf 'flame graph' ;;
    *.collapsed) printf 'collapsed stacks' ;;
    *) printf 'recording' ;;
  esac
}

msg_not_plain_file() { printf '%s %s is not a plain file written by the JVM'"'"'s user (uid %s)' "$STOP_FAILED" "$1" "$jvm_uid"; }
msg_too_large() {
  printf '%s The %s is %s bytes, more than this node'"'"'s limit of %s bytes (FLINK_PROFILER_MAX_HTML_BYTES, default %s): profile for a shorter duration, or raise the limit on the node' "$STOP_FAILED" "$(describe_file "$1")" "$2" "$max_html_bytes" "$MAX_HTML_BYTES_DEFAULT"
}

# Checks that file $1 in out/ is a plain file of the JVM's user within the size limit (else fails the run); sets
# file_size. (Steps that may fail the run set variables rather than print: fail in a $(…) would only end the subshell.)
file_size=0
check_file() {
  local info type size links owner
  info=$(file_info "$1") || fail $EXIT_STOP_FAILED "$(msg_not_plain_file "$1")"
  IFS='|' read -r type size links owner <<<"$info"
  if [[ $type != 'regular file' && $type != 'regular empty file' ]] || [[ $links != 1 || $owner != "$jvm_uid" ]]; then
    fail $EXIT_STOP_FAILED "$(msg_not_plain_file "$1")"
  fi
  ((size <= max_html_bytes)) || fail $EXIT_STOP_FAILED "$(msg_too_large "$1" "$size")"
  file_size=$size
}

# Whether the JVM has written the whole profile: the flame graph ends with </html>; a recording is written under the
# lock `asprof status` takes, so once the session is inactive it is all there if it is there at all. Fails the run
# at once when something else than a plain file of the JVM's user is there, or when it is over the size limit.
profile_complete() {
  local tail_bytes
  file_info "$out_file" >/dev/null || return 1
  check_file "$out_file"
  if [[ -n $converter ]]; then
    ((file_size > 0))
    return
  fi
  tail_bytes=$(as_jvm_user timeout -k 2 "$FILE_TIMEOUT" tail -c 64 -- "$out_file" 2>/dev/null) || return 1
  [[ $tail_bytes == *'</html>' ]]
}

# Waits until the JVM has written the whole flame graph; stops the profiler and fails when it does not in time.
wait_for_flame_graph() {
  local finished=0 inactive_without_file=0 status_polls=0 deadline
  deadline=$(($(date +%s) + FINISH_TIMEOUT))
  while (($(date +%s) < deadline)); do
    jvm_alive || fail $EXIT_PROCESS_EXITED "$(msg_exited_during)"
    run_asprof status "$pid"
    if [[ $asprof_rc == 0 && $asprof_out == *"Profiler is not active"* ]]; then
      # The agent writes the file under the same lock that `status` takes: inactive means written (or failed).
      if profile_complete; then
        finished=1
        break
      fi
      inactive_without_file=$((inactive_without_file + 1))
      ((inactive_without_file < 3)) || break
    elif [[ $asprof_rc != 0 ]]; then
      log "asprof status failed (exit $asprof_rc): ${asprof_out//$'\n'/ }"
    fi
    # The JVM writes the file as the duration ends: look again soon at first, then less often.
    status_polls=$((status_polls + 1))
    if ((status_polls <= 20)); then nap 0.1; else nap 0.5; fi
  done

  profile_done=$finished
  if [[ $finished == 0 ]]; then
    jvm_alive || fail $EXIT_PROCESS_EXITED "$(msg_exited_during)"
    if ((inactive_without_file >= 3)); then
      fail $EXIT_STOP_FAILED "$STOP_FAILED $(explain_asprof_failure 200 'Could not open output file')"
    fi
    run_asprof stop "$pid"
    fail $EXIT_STOP_FAILED "$STOP_FAILED The profiler did not finish writing the $(describe_file "$out_file") within ${FINISH_TIMEOUT}s after the profiling duration"
  fi
}

# ---- Result ----------------------------------------------------------------------------------------

# Reads file $1 of out/ back, as the JVM's user, at most one byte over the limit and within READ_TIMEOUT, into
# root's $2 (gzip); sets read_bytes, how many bytes were read. The file may change under the reader: what counts is
# what was read, and that must be all of a plain file within the limit.
read_bytes=0
read_back() {
  local file=$1 gz=$2
  check_file "$file"
  # dd with nofollow: a link swapped in after the check is not followed even as the JVM's user.
  as_jvm_user timeout -k 2 "$READ_TIMEOUT" dd if="$file" iflag=nofollow bs=65536 count=$((max_html_bytes / 65536 + 1)) status=none 2>/dev/null |
    gzip -c >"$gz" || fail $EXIT_STOP_FAILED "$STOP_FAILED Could not read $file as the JVM's user (uid $jvm_uid) within ${READ_TIMEOUT}s"
  read_bytes=$(gzip -dc -- "$gz" | wc -c) || fail $EXIT_STOP_FAILED "$STOP_FAILED Could not read and encode $file"
  ((read_bytes <= max_html_bytes)) || fail $EXIT_STOP_FAILED "$(msg_too_large "$file" "at least $read_bytes")"
  read_bytes=$((read_bytes))
}

# Sets digest to "<sha256>:<length>" of root's file $1.
digest=''
digest_of() {
  local sum length
  read -r sum _ < <(sha256sum -- "$1") || fail $EXIT_STOP_FAILED "$STOP_FAILED Could not checksum $1"
  length=$(wc -c <"$1") || fail $EXIT_STOP_FAILED "$STOP_FAILED Could not checksum $1"
  digest="$sum:$((length))"
}

# Prints root's gzip file $2 base64-encoded between the markers of section $1 ('' for the flame graph's).
print_section() {
  local label=${1:+ $1}
  printf -- '-----BEGIN FLINK PROFILE%s-----\n' "$label" >&3
  base64 -w 76 <"$2" >&3 || fail $EXIT_STOP_FAILED "$STOP_FAILED Could not encode $2"
  printf -- '-----END FLINK PROFILE%s-----\n' "$label" >&3
}

# Converts the recording (where there is one), reads every file back, and prints the FINISHED line and the files,
# gzip + base64, between markers. The line carries each payload's SHA-256 and length (of the gzip): the service checks
# the payloads it reads from S3 against them, and the line against SSM's own copy of the output's start, which no
# other node can write.
print_result() {
  local html_bytes fields
  if [[ -n $converter ]]; then convert_recording; fi
  read_back "$out_dir/$run_id.html" "$scratch_dir/html.gz"
  html_bytes=$read_bytes
  ((html_bytes > 0)) || fail $EXIT_STOP_FAILED "$STOP_FAILED The flame graph $out_dir/$run_id.html is empty"
  digest_of "$scratch_dir/html.gz"
  fields="sha256=${digest%%:*} bytes=${digest#*:}"
  if [[ -n $converter ]]; then
    read_back "$out_dir/$run_id.collapsed" "$scratch_dir/collapsed.gz"
    digest_of "$scratch_dir/collapsed.gz"
    fields+=" collapsed=$digest"
    read_back "$out_file" "$scratch_dir/jfr.gz"
    digest_of "$scratch_dir/jfr.gz"
    fields+=" jfr=$digest"
  else
    log "sending the flame graph only: $converter_missing"
    success_message+=" (flame graph only: $converter_missing)"
  fi

  result_sent=1
  result_line FINISHED "${success_message//[[:cntrl:]]/ }" "$fields"
  print_section '' "$scratch_dir/html.gz"
  if [[ -n $converter ]]; then
    print_section collapsed "$scratch_dir/collapsed.gz"
    print_section jfr "$scratch_dir/jfr.gz"
  fi
  log "finished: $html_bytes bytes of HTML${converter:+, with the collapsed stacks and the recording}"
}

# ---- Main ------------------------------------------------------------------------------------------

main() {
  # Only the result protocol goes to the real stdout (fd 3); stray output of any command lands on stderr.
  exec 3>&1 1>&2
  install_handlers
  read_inputs
  check_scratch_base
  find_asprof
  find_jvm
  refuse_while_another_profiler_runs
  read_jvm_user
  require_setpriv
  # The sweep of left-over scratch directories runs while the converter is tried (a JVM start): both stand between
  # the request and the profile's start. It touches only root's directories unmodified for over an hour, never the
  # one this run makes.
  remove_stale_scratch_dirs 3>&- &
  local sweep_pid=$!
  find_converter
  wait "$sweep_pid" || true
  make_scratch_dir
  start_profiling
  wait_for_duration
  wait_for_flame_graph
  print_result
}

main "$@"
