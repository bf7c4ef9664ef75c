#!/usr/bin/env python3
"""Snapshot and backup benchmarks against a running stack (deploy/bench.sh starts one).

On one BusyBox server holding SIZE_MB of incompressible data, on an LXC node of its own:
the median time through the gateway (request .. task succeeded) of taking a snapshot,
rolling back to it, taking a backup and restoring it, next to the raw commands on a plain
container with the same data (`lxc-snapshot`, `lxc-snapshot -r`, `tar | zstd` and
`zstd -d | tar -x`), and backup throughput in MB/s.

Usage: bench_snapshots.py GATEWAY_URL ADMIN_PASSWORD LXC_PATH ROUNDS [SIZE_MB]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

gw, password, lxc_path, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
size_mb = int(sys.argv[5]) if len(sys.argv) > 5 else 200


def call(method, path, token=None, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(gw + path, data=data, method=method)
    request.add_header('content-type', 'application/json')
    if token:
        request.add_header('authorization', 'Bearer ' + token)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request) as reply:
            text = reply.read()
            return json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        raise SystemExit(f'{method} {path}: {error.code} {error.read().decode()}')


session = call('POST', '/api/auth/login', body={'login': 'admin', 'password': password})
token = session['accessToken']
admin_id = session['user']['id']
call('POST', f'/api/admin/users/{admin_id}/credits', token, {'amount': 1_000_000, 'reason': 'benchmark'})
call('PUT', '/api/admin/locations/snap', token, {'name': 'Snapshot benchmark node'})
call('PUT', '/api/admin/plans/91', token,
     {'name': 'Bench snapshots', 'vcpus': 1, 'memory': 128, 'disk': 2, 'bandwidth': 1, 'price': 0})
key = call('POST', '/api/tokens', token, {'type': 'skyport', 'name': 'bench-snapshots'})['token']
os.makedirs(lxc_path, exist_ok=True)
call('POST', '/api/nodes/create', body={
    'name': 'bench-snap', 'ram': '1048576', 'disk': '1000000', 'processor': '64', 'driver': 'lxc',
    'lxcPath': lxc_path, 'location': 'snap'}, headers={'x-api-key': key})


def wait(task_id):
    while True:
        task = call('GET', f'/api/tasks/{task_id}', token)
        if task['state'] in ('succeeded', 'failed'):
            assert task['state'] == 'succeeded', task
            return task
        time.sleep(0.005)


def timed(method, path, body):
    started = time.perf_counter()
    reply = call(method, path, token, body)
    wait(reply['taskId'])
    return (time.perf_counter() - started) * 1000, reply


created = call('POST', '/api/server/create', token,
               {'osId': 1, 'tariffId': 91, 'name': 'bench-snap', 'location': 'snap'})
wait(created['taskId'])
sid = created['id']
guest = next(n for n in os.listdir(lxc_path) if os.path.isfile(os.path.join(lxc_path, n, 'config')))


def in_guest(script):
    subprocess.run(['lxc-attach', '-P', lxc_path, '-n', guest, '--clear-env', '--', '/bin/sh', '-c', script],
                   check=True, capture_output=True)


in_guest(f'dd if=/dev/urandom of=/root/blob bs=1M count={size_mb} 2>/dev/null')

snap, rollback, backup, restore, sizes = [], [], [], [], []
for i in range(rounds):
    t, _ = timed('POST', f'/api/server/{sid}/snapshots', {'snapname': f'bench-{i}'})
    snap.append(t)
    t, _ = timed('POST', f'/api/server/{sid}/snapshots/rollback', {'snapname': f'bench-{i}'})
    rollback.append(t)
    timed('DELETE', f'/api/server/{sid}/snapshots', {'snapname': f'bench-{i}'})
    t, reply = timed('POST', f'/api/server/{sid}/backups', {})
    backup.append(t)
    backup_id = reply['backup']['id']
    listed = call('GET', f'/api/server/{sid}/backups', token)['data']
    sizes.append(next(b['sizeBytes'] for b in listed if b['id'] == backup_id))
    t, _ = timed('POST', f'/api/server/{sid}/backups/restore', {'backupId': backup_id, 'overwrite': True})
    restore.append(t)
    timed('DELETE', f'/api/server/{sid}/backups', {'backupId': backup_id})
timed('DELETE', f'/api/server/{sid}', None)

raw_snap, raw_rollback, raw_tar, raw_untar, raw_cycle = [], [], [], [], []
with tempfile.TemporaryDirectory(dir='/var/tmp') as raw:
    os.chmod(raw, 0o755)
    subprocess.run(['lxc-create', '-P', raw, '-n', 'raw', '-t', 'busybox'], check=True, capture_output=True)
    root = os.path.join(raw, 'raw', 'rootfs')
    subprocess.run(['dd', 'if=/dev/urandom', f'of={root}/root/blob', 'bs=1M', f'count={size_mb}'],
                   check=True, capture_output=True)
    # What a snapshot of a running LXC guest adds: a clean stop and a start.
    for i in range(rounds):
        subprocess.run(['lxc-start', '-P', raw, '-n', 'raw'], check=True, capture_output=True)
        subprocess.run(['lxc-wait', '-P', raw, '-n', 'raw', '-s', 'RUNNING', '-t', '30'], check=True,
                       capture_output=True)
        time.sleep(0.5)
        started = time.perf_counter()
        subprocess.run(['lxc-stop', '-P', raw, '-n', 'raw', '-t', '30'], check=True, capture_output=True)
        subprocess.run(['lxc-start', '-P', raw, '-n', 'raw'], check=True, capture_output=True)
        subprocess.run(['lxc-wait', '-P', raw, '-n', 'raw', '-s', 'RUNNING', '-t', '30'], check=True,
                       capture_output=True)
        raw_cycle.append((time.perf_counter() - started) * 1000)
        subprocess.run(['lxc-stop', '-P', raw, '-n', 'raw', '-k'], capture_output=True)
    for i in range(rounds):
        started = time.perf_counter()
        subprocess.run(['lxc-snapshot', '-P', raw, '-n', 'raw'], check=True, capture_output=True)
        raw_snap.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        subprocess.run(['lxc-snapshot', '-P', raw, '-n', 'raw', '-r', f'snap{i}'], check=True, capture_output=True)
        raw_rollback.append((time.perf_counter() - started) * 1000)
        archive = os.path.join(raw, 'archive.tar.zst')
        started = time.perf_counter()
        subprocess.run(f"tar --create --file=- --numeric-owner --acls --xattrs --xattrs-include='*' "
                       f"--one-file-system --sparse -C {root} . | zstd -q -T0 -3 > {archive}",
                       shell=True, check=True)
        raw_tar.append((time.perf_counter() - started) * 1000)
        into = os.path.join(raw, 'unpacked')
        os.makedirs(into)
        started = time.perf_counter()
        subprocess.run(f"zstd -q -d -c {archive} | tar --extract --file=- --preserve-permissions "
                       f"--numeric-owner --acls --xattrs --xattrs-include='*' -C {into}",
                       shell=True, check=True)
        raw_untar.append((time.perf_counter() - started) * 1000)
        subprocess.run(['rm', '-rf', into, archive], check=True)
    subprocess.run(['lxc-destroy', '-P', raw, '-n', 'raw', '-f', '-s'], capture_output=True)


def line(label, ours, theirs, theirs_label):
    print(f'   {label:<9} gateway {statistics.median(ours):8.1f} ms (min {min(ours):.1f}, max {max(ours):.1f})'
          f'   raw {theirs_label:<16} {statistics.median(theirs):8.1f} ms')


archive_mb = statistics.median(sizes) / 1e6
print(f'== snapshots and backups, BusyBox on LXC with {size_mb} MB of random data, median of {rounds}')
line('snapshot', snap, raw_snap, 'lxc-snapshot')
line('rollback', rollback, raw_rollback, 'lxc-snapshot -r')
line('backup', backup, raw_tar, 'tar | zstd')
line('restore', restore, raw_untar, 'zstd -d | tar -x')
print(f'   (a snapshot, rollback or restore of a running guest includes a clean stop and a start:'
      f' raw lxc-stop + lxc-start {statistics.median(raw_cycle):.1f} ms)')
print(f'   archive {archive_mb:.1f} MB; backup throughput through the gateway '
      f'{archive_mb / (statistics.median(backup) / 1000):.1f} MB/s, raw tar | zstd '
      f'{archive_mb / (statistics.median(raw_tar) / 1000):.1f} MB/s')
