"""Starts the fakepve Proxmox VE test server (PyPI: fakepve) on loopback for node-svc's tests.

Usage: python3 fakepve_server.py PORT DIR
Creates a CA-signed certificate in DIR, registers an API token, and prints one JSON line
{"url", "cafile", "token", "user", "password", "node"} once it listens. Runs until killed.
"""

import asyncio
import itertools
import json
import os
import re
import sys
import time

from fakepve import FakePve
from fakepve.certs import make_cert

TOKEN_ID = 'root@pam!vps'
TOKEN_SECRET = 'd9f3a1c4-5b6e-4f70-8a9b-0c1d2e3f4a5b'
PASSWORD = 'fake-pve-password'


def keep_vzdump_archives(pve):
    """fakepve answers vzdump with a task but writes nothing; PVE writes the archive to the
    storage as `backup/vzdump-{lxc|qemu}-VMID-YYYY_MM_DD-HH_MM_SS.tar.zst`, listed with its
    vmid, format and creation time. Do that once the task is done."""
    original = pve.synthesise
    seconds = itertools.count()

    async def synthesise(match, method, info, user, values):
        answer = await original(match, method, info, user, values)
        if method == 'POST' and match.template == '/nodes/{node}/vzdump' and values.get('vmid'):
            vmid = int(values['vmid'])
            kind = 'qemu' if pve.vm(vmid) is not None else 'lxc'
            # One archive per second at most, as PVE's names go: step a second each time.
            stamp = time.gmtime(time.time() + next(seconds))
            name = 'vzdump-{0}-{1}-{2}.tar.zst'.format(kind, vmid, time.strftime('%Y_%m_%d-%H_%M_%S', stamp))
            store = pve.storages[values.get('storage') or 'local']
            store.setdefault('volumes', {})['backup/' + name] = {
                'content': 'backup', 'size': 64 * 1024 * 1024, 'ctime': int(time.mktime(stamp)),
                'format': 'tar.zst', 'vmid': vmid, 'subtype': kind}
        return answer

    pve.synthesise = synthesise


def guest_stats_from_file(pve, directory):
    """Lets a test set what /cluster/resources reports for a guest: DIR/stats.json maps a
    vmid or a tag (`vps-<guest name>`) to fields PVE reports there (cpu, mem, netin, netout,
    diskread, diskwrite, uptime ...), read again on every request so counters can move
    between two polls. fakepve applies a VM's `stats` there itself but not a container's, so
    those are laid over the container entries too. Only fields fakepve already reports are
    replaced."""
    path = os.path.join(directory, 'stats.json')

    def refresh():
        try:
            with open(path) as f:
                wanted = json.load(f)
        except (OSError, ValueError):
            wanted = {}
        for guest in list(pve.vms) + list(pve.cts):
            tags = [t for t in re.split(r'[;, ]', str(guest.config.get('tags') or '')) if t]
            guest.stats = {}
            for key in [str(guest.vmid)] + tags:
                guest.stats.update(wanted.get(key, {}))

    resources, ct_resources = pve._resources, pve.ct_resources

    async def refreshed(request):
        refresh()
        return await resources(request)

    def overlaid(user, kind=None):
        items = ct_resources(user, kind)
        for item in items:
            ct = pve.ct(item['vmid'])
            if ct is not None:
                item.update((k, v) for k, v in ct.stats.items() if k in item)
        return items

    # The app binds `_resources` when it is built (in start()), so this comes first.
    pve._resources = refreshed
    pve.ct_resources = overlaid


async def main(port, directory):
    # Self-signed: clients trust the certificate itself as their CA.
    certfile, keyfile, _ = make_cert(directory, hosts=('127.0.0.1',))
    pve = FakePve(user='root@pam', password=PASSWORD, host='127.0.0.1', port=port)
    pve.time_scale = 0
    # Tests of ticket renewal shorten the tickets' life.
    pve.ticket_ttl = float(os.environ.get('FAKEPVE_TICKET_TTL', '7200'))
    pve.apitokens[TOKEN_ID] = TOKEN_SECRET
    # A VM template for the QEMU driver to clone.
    pve.add_vm(9000, 'debian-template', template=True, config={'scsi0': 'local-lvm:base-9000-disk-0,size=8G'})
    keep_vzdump_archives(pve)
    guest_stats_from_file(pve, directory)
    await pve.start(certfile, keyfile)
    print(json.dumps({
        'url': 'https://127.0.0.1:{0}'.format(pve.port),
        'cafile': certfile,
        'token': '{0}={1}'.format(TOKEN_ID, TOKEN_SECRET),
        'user': 'root@pam',
        'password': PASSWORD,
        'node': sorted(pve.nodes)[0],
    }), flush=True)
    await asyncio.Event().wait()


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
