#!/usr/bin/env bash
# A single-node SLURM for the cluster test: munge, slurmctld and slurmd on this machine, no
# accounting database, one (pretend) GPU declared as a generic resource. Needs root.
# Installs the Debian packages when they are missing; does nothing when the node is already up.
set -euo pipefail

if sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed|allocated"; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "start_slurm.sh: needs root (or deselect the cluster test with: pytest -m 'not cluster')" >&2
    exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

host=$(hostname -s)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
[ -s /etc/munge/munge.key ] || mungekey --create --force
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged

node=$(slurmd -C | head -n 1)
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=diffaug-test
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
ReturnToService=2
GresTypes=gpu
${node} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/gres.conf <<CONF
AutoDetect=off
NodeName=${host} Name=gpu Count=1 File=/dev/null
CONF

pgrep -x slurmctld >/dev/null || slurmctld -i
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed"; then
        exit 0
    fi
    sleep 1
done
echo "start_slurm.sh: the node did not come up; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
