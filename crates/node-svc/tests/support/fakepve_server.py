"""Starts the fakepve Proxmox VE test server (PyPI: fakepve) on loopback for node-svc's tests.

Usage: python3 fakepve_server.py PORT DIR
Creates a CA-signed certificate in DIR, registers an API token, and prints one JSON line
{"url", "cafile", "token", "user", "password", "node"} once it listens. Runs until killed.
"""

import asyncio
import json
import os
import sys

from fakepve import FakePve
from fakepve.certs import make_cert

TOKEN_ID = 'root@pam!vps'
TOKEN_SECRET = 'd9f3a1c4-5b6e-4f70-8a9b-0c1d2e3f4a5b'
PASSWORD = 'fake-pve-password'


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
