#!/usr/bin/env python3
"""Server benchmarks against a running stack (deploy/bench.sh starts one).

1. Create to running: the median time from `POST /api/server/create` to the task's success
   for a BusyBox server on an LXC node, next to the raw `lxc-create -t busybox` +
   `lxc-start` + `lxc-wait` on the same machine.
2. Fills the caller's account to 100 servers for the `GET /api/v1/servers/` wrk run that
   bench.sh does next; writes a VPS.org token for it to TOKEN_FILE.

Usage: bench_servers.py GATEWAY_URL ADMIN_PASSWORD LXC_PATH ROUNDS TOKEN_FILE
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

gw, password, lxc_path, rounds, token_file = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]


def call(method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(gw + path, data=data, method=method)
    request.add_header('content-type', 'application/json')
    if token:
        request.add_header('authorization', 'Bearer ' + token)
    try:
        with urllib.request.urlopen(request) as reply:
            text = reply.read()
            return reply.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        raise SystemExit(f'{method} {path}: {error.code} {error.read().decode()}')


_, session = call('POST', '/api/auth/login', body={'login': 'admin', 'password': password})
token = session['accessToken']
admin_id = session['user']['id']
call('POST', f'/api/admin/users/{admin_id}/credits', token, {'amount': 1_000_000, 'reason': 'benchmark'})
call('PUT', '/api/admin/locations/bench', token, {'name': 'Benchmark node'})
call('PUT', '/api/admin/plans/90', token,
     {'name': 'Bench', 'vcpus': 1, 'memory': 64, 'disk': 1, 'bandwidth': 1, 'price': 0})
# Room for the 100 servers of the list benchmark (the default quota is 10 per user).
call('PUT', f'/api/admin/users/{admin_id}/quota', token,
     {'servers': 200, 'cores': 400, 'memory': 400 * 1024, 'addresses': 200})
key = call('POST', '/api/tokens', token, {'type': 'skyport', 'name': 'bench'})[1]['token']
request = urllib.request.Request(gw + '/api/nodes/create', method='POST', data=json.dumps({
    'name': 'bench', 'ram': '1048576', 'disk': '1000000', 'processor': '256', 'driver': 'lxc',
    'lxcPath': lxc_path, 'location': 'bench'}).encode())
request.add_header('content-type', 'application/json')
request.add_header('x-api-key', key)
urllib.request.urlopen(request).read()


def wait(task_id):
    while True:
        _, task = call('GET', f'/api/tasks/{task_id}', token)
        if task['state'] in ('succeeded', 'failed'):
            return task
        time.sleep(0.005)


def create(name):
    return call('POST', '/api/server/create', token,
                {'osId': 1, 'tariffId': 90, 'name': name, 'location': 'bench'})[1]


ours = []
for i in range(rounds):
    started = time.perf_counter()
    created = create(f'bench-{i}')
    task = wait(created['taskId'])
    ours.append((time.perf_counter() - started) * 1000)
    assert task['state'] == 'succeeded', task
    _, deleted = call('DELETE', f"/api/server/{created['id']}", token)
    wait(deleted['taskId'])

theirs = []
with tempfile.TemporaryDirectory(dir='/var/tmp') as raw:
    for i in range(rounds):
        name = f'raw-{i}'
        started = time.perf_counter()
        subprocess.run(['lxc-create', '-P', raw, '-n', name, '-t', 'busybox'], check=True, capture_output=True)
        subprocess.run(['lxc-start', '-P', raw, '-n', name], check=True, capture_output=True)
        subprocess.run(['lxc-wait', '-P', raw, '-n', name, '-s', 'RUNNING', '-t', '30'], check=True, capture_output=True)
        theirs.append((time.perf_counter() - started) * 1000)
        subprocess.run(['lxc-destroy', '-P', raw, '-n', name, '-f'], check=True, capture_output=True)

print(f'== create to running, BusyBox on LXC, median of {rounds}')
print(f'   through the gateway (POST create .. task succeeded): {statistics.median(ours):.1f} ms '
      f'(min {min(ours):.1f}, max {max(ours):.1f})')
print(f'   raw lxc-create + lxc-start + lxc-wait:              {statistics.median(theirs):.1f} ms '
      f'(min {min(theirs):.1f}, max {max(theirs):.1f})')

# 100 servers for the list benchmark (created concurrently in batches, then all running).
pending = []
for i in range(100):
    pending.append(create(f'list-{i}')['taskId'])
for task_id in pending:
    assert wait(task_id)['state'] == 'succeeded'
vpsorg = call('POST', '/api/tokens', token, {'type': 'vpsorg', 'name': 'bench'})[1]['token']
_, listed = call('GET', '/api/v1/servers/', vpsorg)
assert listed['count'] == 100, listed['count']
with open(token_file, 'w') as out:
    out.write(vpsorg)
