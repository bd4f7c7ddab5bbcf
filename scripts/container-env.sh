# Sourced by the scripts of the container path. Sets CONTAINER_ARGS, the global options the
# container runtime needs on this machine, and CONTAINERS_CONF for Podman.
#
# A user's ordinary Docker or Podman needs none of this. The project's test machines run Podman
# in a sandbox that needs three settings, kept here and nowhere else: the runc runtime (crun refuses
# the sandbox's cgroup layout), the cgroupfs manager, and a containers.conf with no default
# ulimits and no pids limit. PMG_CONTAINER_SANDBOX=0 turns them off; they are on when the
# sandbox is detected (no systemd as PID 1, root).
CONTAINER_ARGS=()
if [ "${runtime:-}" = podman ]; then
  sandbox=${PMG_CONTAINER_SANDBOX:-auto}
  if [ "$sandbox" = auto ]; then
    sandbox=0
    if [ "$(id -u)" = 0 ] && [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ]; then sandbox=1; fi
  fi
  if [ "$sandbox" = 1 ]; then
    CONTAINER_ARGS=(--runtime runc --cgroup-manager cgroupfs)
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/envoy-config/containers-sandbox.conf}
  fi
fi
