"""Real file servers for Patchbay's tests.

SFTP (asyncssh): a user logging in with a password or with one of the client keys this script
makes; the server's own files under the working directory, which is ROOT (no chroot, so that
a link out of the base directory resolves to where it really leads). SIGUSR1 changes the
server's host key for new connections and prints "ROTATED".

FTPS (pyftpdlib, explicit TLS required on the control and the data connections) or plain FTP:
the user's home is ROOT. The server's certificate is signed by a CA made here; its PEM is in
the READY line. MASQUERADE, when given, is the address the server names in its PASV answers
(a client must not connect there).

Usage:
  file_server.py sftp PORT ROOT USER PASSWORD
  file_server.py ftps|ftp PORT ROOT USER PASSWORD [MASQUERADE]
Prints "READY <json>" once listening.
"""

import asyncio
import datetime
import ipaddress
import json
import os
import signal
import sys
import tempfile


def sftp(port, root, user, password):
    import asyncssh

    host_keys = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(2)]
    client = asyncssh.generate_private_key("ssh-ed25519")
    client_rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    passphrase = "correct horse battery"
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    allowed = [client.export_public_key().decode(), client_rsa.export_public_key().decode()]
    keys_file = tempfile.NamedTemporaryFile("w", suffix=".pub", delete=False)
    keys_file.write("".join(allowed))
    keys_file.close()

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username):
            return True

        def password_auth_supported(self):
            return True

        def validate_password(self, username, given):
            return username == user and given == password

    os.chdir(root)

    async def main():
        acceptor = await asyncssh.create_server(
            Server,
            "127.0.0.1",
            port,
            server_host_keys=[host_keys[0]],
            authorized_client_keys=keys_file.name,
            sftp_factory=True,
            allow_scp=False,
            reuse_address=True,
        )

        def rotate():
            acceptor.update(server_host_keys=[host_keys[1]])
            print("ROTATED", flush=True)

        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, rotate)
        print(
            "READY "
            + json.dumps(
                {
                    "host_key": host_keys[0].export_public_key().decode().strip(),
                    "next_host_key": host_keys[1].export_public_key().decode().strip(),
                    "client_key": client.export_private_key().decode(),
                    "client_rsa_key": client_rsa.export_private_key(
                        passphrase=passphrase
                    ).decode(),
                    "passphrase": passphrase,
                    "stranger_key": stranger.export_private_key().decode(),
                    "home": os.getcwd(),
                }
            ),
            flush=True,
        )
        await asyncio.Event().wait()

    asyncio.run(main())


def certificates():
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Patchbay test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False)
    pem.write(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pem.write(cert.public_bytes(serialization.Encoding.PEM))
    pem.close()
    return ca.public_bytes(serialization.Encoding.PEM).decode(), pem.name


def ftp(protocol, port, root, user, password, masquerade):
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm="elradfmwMT")
    ready = {}
    if protocol == "ftps":
        ca, certfile = certificates()
        handler = TLS_FTPHandler
        handler.certfile = certfile
        handler.tls_control_required = True
        handler.tls_data_required = True
        ready["ca"] = ca
    else:
        handler = FTPHandler
    handler.authorizer = authorizer
    if masquerade:
        handler.masquerade_address = masquerade
    server = FTPServer(("127.0.0.1", port), handler)
    print("READY " + json.dumps(ready), flush=True)
    server.serve_forever()


def main():
    protocol, port, root, user, password = sys.argv[1:6]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if protocol == "sftp":
        sftp(int(port), root, user, password)
    else:
        masquerade = sys.argv[6] if len(sys.argv) > 6 else None
        ftp(protocol, int(port), root, user, password, masquerade)


if __name__ == "__main__":
    main()
