"""The bench:signature baseline: libxmlsec1 (python3-xmlsec) verifying an X-Road signature
in-process for a number of seconds. Usage: libxmlsec1-verify.py signatures.xml cert.pem SECONDS
URI=FILE... Prints verifications per second. Data references (/message.xml, …) are served from
memory through xmlsec's I/O callbacks, as xmlsec1's --url-map does."""
import sys, time
import xmlsec
from lxml import etree

sig_path, cert_path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
files = {}
for arg in sys.argv[4:]:
    uri, path = arg.split('=', 1)
    files[uri.encode()] = open(path, 'rb').read()  # xmlsec passes URIs as bytes

class Reader:
    def __init__(self, data): self.data, self.pos = data, 0
    def read(self, buf):
        # xmlsec hands a buffer to fill and wants the count back.
        chunk = self.data[self.pos:self.pos + len(buf)]; self.pos += len(chunk)
        buf[:len(chunk)] = chunk
        return len(chunk)

xmlsec.cleanup_callbacks()
xmlsec.register_callbacks(lambda uri: uri in files, lambda uri: Reader(files[uri]), lambda r, buf: r.read(buf), lambda r: None)

raw = open(sig_path, 'rb').read()
key = xmlsec.Key.from_file(cert_path, xmlsec.constants.KeyDataFormatCertPem)

def verify_once():
    root = etree.fromstring(raw)
    xmlsec.tree.add_ids(root, ['Id'])
    node = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.verify(node)

verify_once()
n = 0
end = time.perf_counter() + seconds
while time.perf_counter() < end:
    verify_once(); n += 1
print(round(n / seconds))
