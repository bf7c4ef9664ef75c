#!/usr/bin/env python3
"""Sets up the read benchmark (deploy/bench_reads.sh) against a running stack.

A customer with 100 BusyBox servers on an LXC node, one snapshot each, and a credential for
every dialect. For each read route it writes, into OUT_DIR:
  routes.tsv   name, method, path, headers and body of each route, tab-separated
  NAME         the body the gateway answers, which the bare reference server then serves

Usage: bench_reads.py GATEWAY_URL ADMIN_PASSWORD LXC_PATH OUT_DIR
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

gw, password, lxc_path, out = sys.argv[1:5]
SERVERS = int(os.environ.get('SERVERS', '100'))


def call(method, path, headers=None, body=None, raw=False):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(gw + path, data=data, method=method)
    request.add_header('content-type', 'application/json')
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request) as reply:
            text = reply.read()
            if raw:
                return text
            return json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        raise SystemExit(f'{method} {path}: {error.code} {error.read().decode()}')


def bearer(token):
    return {'authorization': 'Bearer ' + token}


admin = call('POST', '/api/auth/login', body={'login': 'admin', 'password': password})
admin_jwt = bearer(admin['accessToken'])
key = {'x-api-key': call('POST', '/api/tokens', admin_jwt, {'type': 'skyport', 'name': 'reads'})['token']}
call('PUT', '/api/admin/locations/bench', admin_jwt, {'name': 'Benchmark node'})
call('PUT', '/api/admin/plans/90', admin_jwt,
     {'name': 'Bench', 'vcpus': 1, 'memory': 64, 'disk': 1, 'bandwidth': 1, 'price': 0})
call('POST', '/api/nodes/create', key, {
    'name': 'bench', 'ram': '1048576', 'disk': '1000000', 'processor': '256', 'driver': 'lxc',
    'lxcPath': lxc_path, 'location': 'bench'})
user_password = 'reader-password-1'
call('POST', '/api/auth/create-user', key, {
    'username': 'reader', 'email': 'reader@example.com', 'password': user_password,
    'userId': 'reader-1'})
session = call('POST', '/api/auth/login', body={'login': 'reader', 'password': user_password})
jwt = bearer(session['accessToken'])
logged_in = time.monotonic()


def reader():
    """The customer's session, logged into again before its access token can expire."""
    global jwt, logged_in
    if time.monotonic() - logged_in > 300:
        jwt = bearer(call('POST', '/api/auth/login',
                          body={'login': 'reader', 'password': user_password})['accessToken'])
        logged_in = time.monotonic()
    return jwt
call('POST', f"/api/admin/users/{session['user']['id']}/credits", admin_jwt,
     {'amount': 1_000_000, 'reason': 'benchmark'})
call('PUT', f"/api/admin/users/{session['user']['id']}/quota", admin_jwt,
     {'servers': SERVERS + 10, 'cores': 4 * SERVERS, 'memory': 400 * 1024, 'addresses': SERVERS + 10})


def wait(task_id):
    """True when the task succeeded."""
    while True:
        task = call('GET', f'/api/tasks/{task_id}', reader())
        if task['state'] in ('succeeded', 'failed'):
            if task['state'] == 'failed':
                print(f"   a task failed: {task.get('error')}", file=sys.stderr)
            return task['state'] == 'succeeded'
        time.sleep(0.05)


started = time.monotonic()
ids = []
for batch in range(0, SERVERS, 10):
    made = [call('POST', '/api/server/create', reader(),
                 {'osId': 1, 'tariffId': 90, 'name': f'read-{i}', 'location': 'bench'})
            for i in range(batch, min(batch + 10, SERVERS))]
    for server in made:
        assert wait(server['taskId']), 'a server was not created'
        ids.append(server['id'])
# Snapshots of the first SNAPSHOTS servers (all by default; 0 leaves them out and the snapshot
# list is empty), five at a time; one that fails (a guest slow to stop) is taken again. LXC
# stops a guest for its snapshot, and a guest that ignores the halt signal holds it for the
# node's stop grace (30 s).
snapshotted = ids[:int(os.environ.get('SNAPSHOTS', len(ids)))]
for batch in range(0, len(snapshotted), 5):
    for attempt in range(3):
        pending = [i for i in snapshotted[batch:batch + 5]
                   if not any(s.get('status') not in ('failed', 'error')
                              for s in call('GET', f'/api/server/{i}/snapshots', reader())['data'])]
        if not pending:
            break
        tasks = [call('POST', f'/api/server/{i}/snapshots', reader(), {'snapname': f'snap-{i}-{attempt}'})['taskId']
                 for i in pending]
        for task in tasks:
            wait(task)
print(f'   {len(ids)} servers and {len(snapshotted)} snapshots, made in '
      f'{time.monotonic() - started:.0f} s', file=sys.stderr)

vpsorg = bearer(call('POST', '/api/tokens', reader(), {'type': 'vpsorg', 'name': 'reads'})['token'])
pair = call('POST', '/api/tokens', reader(), {'type': 'cvm', 'name': 'reads', 'clientApi': True})
cvm = {'API-Public-Token': pair['publicToken'], 'API-Private-Token': pair['privateToken']}
one = ids[0]

# Fresh tokens last: the runs that follow take minutes.
jwt = bearer(call('POST', '/api/auth/login', body={'login': 'reader', 'password': user_password})['accessToken'])
routes = [
    ('panel-list', 'GET', '/api/server', jwt, None),
    ('skyport-instances', 'GET', '/api/instances', key, None),
    ('skyport-user-instances', 'POST', '/api/getUserInstance', key, {'userId': 'reader-1'}),
    ('vpsorg-list', 'GET', '/api/v1/servers/', vpsorg, None),
    ('vpsorg-snapshots', 'GET', '/api/v1/snapshots/', vpsorg, None),
    ('cvm-list', 'GET', '/api/client/vps/list', cvm, None),
    ('panel-server', 'GET', f'/api/server/{one}', jwt, None),
    ('vpsorg-server', 'GET', f'/api/v1/servers/{one}/', vpsorg, None),
    ('panel-status', 'GET', f'/api/server/{one}/status', jwt, None),
    ('cvm-status', 'GET', f'/api/client/vps/{one}/status', cvm, None),
    ('auth-me', 'GET', '/api/auth/me', jwt, None),
]
with open(os.path.join(out, 'routes.tsv'), 'w') as listing:
    for name, method, path, headers, body in routes:
        text = call(method, path, headers, body, raw=True)
        with open(os.path.join(out, name), 'wb') as saved:
            saved.write(text)
        listing.write('\t'.join([name, method, path, json.dumps(headers), json.dumps(body) if body else '']) + '\n')
