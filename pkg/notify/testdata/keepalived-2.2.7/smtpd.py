import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 2525)); s.listen(5)
out = open("/tmp/notify-ka/smtp.log", "ab")
while True:
    c, _ = s.accept(); f = c.makefile("rb")
    c.sendall(b"220 test ESMTP\r\n"); indata = False
    while True:
        l = f.readline()
        if not l: break
        out.write(l); out.flush()
        if indata:
            if l == b".\r\n": indata = False; c.sendall(b"250 ok\r\n")
            continue
        u = l.upper()
        if u.startswith(b"DATA"): indata = True; c.sendall(b"354 go\r\n")
        elif u.startswith(b"QUIT"): c.sendall(b"221 bye\r\n"); break
        else: c.sendall(b"250 ok\r\n")
    c.close(); out.write(b"--- end of session\r\n"); out.flush()
