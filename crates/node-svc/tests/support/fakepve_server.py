"""Starts the fakepve Proxmox VE test server (PyPI: fakepve) on loopback for node-svc's tests.

Usage: python3 fakepve_server.py PORT DIR
Creates a CA-signed certificate in DIR, registers an API token, and prints one JSON line
{"url", "cafile", "token", "user", "password", "node"} once it listens. Runs until killed.
"""

import asyncio
import itertools
import json
import os
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
            kind = 'qemu' if vmid in getattr(pve, 'vms', {}) and pve.vms[vmid].get('type') == 'qemu' else 'lxc'
            # One archive per second at most, as PVE's names go: step a second each time.
            stamp = time.gmtime(time.time() + next(seconds))
            name = 'vzdump-{0}-{1}-{2}.tar.zst'.format(kind, vmid, time.strftime('%Y_%m_%d-%H_%M_%S', stamp))
            store = pve.storages[values.get('storage') or 'local']
            store.setdefault('volumes', {})['backup/' + name] = {
                'content': 'backup', 'size': 64 * 1024 * 1024, 'ctime': int(time.mktime(stamp)),
                'format': 'tar.zst', 'vmid': vmid, 'subtype': kind}
        return answer

    pve.synthesise = synthesise


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
