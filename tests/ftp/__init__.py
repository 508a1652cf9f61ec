"""A real FTP/FTPS server on loopback (pyftpdlib) for the FTP watcher's tests."""

from ftp.server import FtpServer, make_ca, start_ftp_server

__all__ = ["FtpServer", "make_ca", "start_ftp_server"]
