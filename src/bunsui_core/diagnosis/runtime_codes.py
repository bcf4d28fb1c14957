"""The error vocabularies of language runtimes: Node.js, npm, Go and .NET.

Node.js's error codes (nodejs.org/api/errors.html: `Error [ERR_REQUIRE_ESM]`, `code:
'UND_ERR_CONNECT_TIMEOUT'`) and the OpenSSL verification codes it prints; npm's `npm ERR! code
ERESOLVE`; the texts Go's runtime and net packages print (go.dev/src/runtime/panic.go,
go.dev/src/net); .NET's System exception classes (learn.microsoft.com/dotnet/api/system) and
the Windows texts under them. Each maps to the family its reference describes.
"""

from __future__ import annotations

NODE: dict[str, str] = {
    "ERR_REQUIRE_ESM": "INVALID_REQUEST",  # require() of an ES module: the package's module type
    "ERR_UNKNOWN_FILE_EXTENSION": "INVALID_REQUEST",  # .ts without a loader
    "ERR_INVALID_PACKAGE_CONFIG": "INVALID_REQUEST",
    "ERR_PACKAGE_PATH_NOT_EXPORTED": "MISSING_MODULE",  # the installed version lacks the subpath
    "ERR_INVALID_ARG_TYPE": "CODE_DEFECT",
    "ERR_INVALID_ARG_VALUE": "CODE_DEFECT",
    "ERR_OUT_OF_RANGE": "CODE_DEFECT",
    "ERR_ASSERTION": "CODE_DEFECT",
    "ERR_HTTP_HEADERS_SENT": "CODE_DEFECT",
    "ERR_INVALID_URL": "INVALID_REQUEST",
    "ERR_STREAM_PREMATURE_CLOSE": "CONNECTION_FAILED",  # the peer closed before the end
    "ERR_HTTP2_STREAM_ERROR": "CONNECTION_FAILED",
    "ERR_SOCKET_CONNECTION_TIMEOUT": "CONNECT_TIMEOUT",
    "ERR_WORKER_OUT_OF_MEMORY": "OUT_OF_MEMORY",
    "ERR_CHILD_PROCESS_STDIO_MAXBUFFER": "RESOURCE_EXHAUSTED",  # the maxBuffer setting
    "ERR_FS_FILE_TOO_LARGE": "INVALID_DATA",
    "ERR_STRING_TOO_LONG": "INVALID_DATA",
    "ERR_OSSL_EVP_UNSUPPORTED": "INVALID_REQUEST",  # OpenSSL 3 without the legacy provider
    "ERR_TLS_CERT_ALTNAME_INVALID": "INVALID_REQUEST",
    # undici, the client under Node's fetch()
    "UND_ERR_CONNECT_TIMEOUT": "CONNECT_TIMEOUT",
    "UND_ERR_HEADERS_TIMEOUT": "NETWORK_TIMEOUT",
    "UND_ERR_BODY_TIMEOUT": "NETWORK_TIMEOUT",
    "UND_ERR_SOCKET": "CONNECTION_FAILED",
    # OpenSSL's certificate verification results: the trust store or the certificate
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE": "INVALID_REQUEST",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY": "INVALID_REQUEST",
    "SELF_SIGNED_CERT_IN_CHAIN": "INVALID_REQUEST",
    "DEPTH_ZERO_SELF_SIGNED_CERT": "INVALID_REQUEST",
    "CERT_HAS_EXPIRED": "INVALID_REQUEST",
}

# child_process: `spawn python3 ENOENT` is a command that is not installed, not a missing file.
NODE_SPAWN = r"\bspawn(?:Sync)? [\w./-]{1,200} (ENOENT)\b"
NODE_SPAWN_FAMILY = "MISSING_EXECUTABLE"

# npm's error codes (docs.npmjs.com/common-errors), `npm ERR! code X` (npm 10: `npm error code X`).
NPM_CODE = r"\bnpm (?:ERR!|error) code (E[A-Z0-9]{2,20})\b"
NPM: dict[str, str] = {
    "ERESOLVE": "MISSING_MODULE",  # no dependency tree satisfies the peer ranges
    "ETARGET": "MISSING_MODULE",  # no version matches the range
    "E404": "MISSING_MODULE",  # no such package in the registry
    "EBADENGINE": "INVALID_REQUEST",  # the Node version the package requires
    "E401": "AUTHENTICATION_FAILED",
    "E403": "PERMISSION_DENIED",
}

# Go's net package: which call timed out says whether a connection was ever made.
GO_NET_TIMEOUT = r"\b(dial|read|write) (?:tcp|udp)[46]?\b[^\n]{0,200}?: i/o timeout\b"
GO_NET_TIMEOUTS: dict[str, str] = {
    "dial": "CONNECT_TIMEOUT",
    "read": "NETWORK_TIMEOUT",
    "write": "NETWORK_TIMEOUT",
}

MESSAGES: dict[str, str] = {
    # V8's heap limit (--max-old-space-size): the process's memory
    "JavaScript heap out of memory": "OUT_OF_MEMORY",
    # Go's runtime: fatal errors and panics
    "runtime: out of memory": "OUT_OF_MEMORY",
    "invalid memory address or nil pointer dereference": "CODE_DEFECT",
    "runtime error: index out of range": "CODE_DEFECT",
    "runtime error: slice bounds out of range": "CODE_DEFECT",
    "runtime error: integer divide by zero": "CODE_DEFECT",
    "all goroutines are asleep - deadlock": "CODE_DEFECT",
    "concurrent map writes": "CODE_DEFECT",
    "goroutine stack exceeds": "CODE_DEFECT",
    # Go's net and net/http, crypto/x509
    "no such host": "NAME_RESOLUTION_FAILED",
    "Client.Timeout exceeded while awaiting headers": "NETWORK_TIMEOUT",
    "context deadline exceeded": "NETWORK_TIMEOUT",  # the caller's deadline on a remote call
    "TLS handshake timeout": "CONNECT_TIMEOUT",
    "x509: certificate signed by unknown authority": "INVALID_REQUEST",
    "x509: certificate has expired or is not yet valid": "INVALID_REQUEST",
    "x509: certificate is valid for": "INVALID_REQUEST",  # the host name does not match
    # .NET and Windows texts under generic classes (HttpRequestException, IOException)
    "No such host is known": "NAME_RESOLUTION_FAILED",
    "There is not enough space on the disk": "DISK_FULL",
    "due to the configured HttpClient.Timeout": "NETWORK_TIMEOUT",
    "The remote certificate is invalid according to the validation procedure": ("INVALID_REQUEST"),
    "A network-related or instance-specific error occurred while establishing a connection": (
        "CONNECTION_FAILED"
    ),
}
"""Texts runtimes print under a generic class or none, each naming one family."""

CLASSES: dict[str, str] = {
    # JavaScript's standard error types (Node)
    "RangeError": "CODE_DEFECT",
    # System.* (learn.microsoft.com/dotnet/api/system.systemexception)
    "FormatException": "INVALID_DATA",  # input text not in the expected format
    "JsonException": "INVALID_DATA",
    "EndOfStreamException": "INVALID_DATA",  # the input ends early
    "KeyNotFoundException": "INVALID_DATA",  # as Python's KeyError
    "InvalidCastException": "CODE_DEFECT",
    "ArgumentException": "CODE_DEFECT",
    "ArgumentNullException": "CODE_DEFECT",
    "ArgumentOutOfRangeException": "CODE_DEFECT",
    "InvalidOperationException": "CODE_DEFECT",
    "NullReferenceException": "CODE_DEFECT",
    "NotSupportedException": "CODE_DEFECT",
    "DivideByZeroException": "CODE_DEFECT",
    "OverflowException": "CODE_DEFECT",
    "StackOverflowException": "CODE_DEFECT",
    "DuplicateNameException": "CODE_DEFECT",
    "DirectoryNotFoundException": "MISSING_FILE",
    "UnauthorizedAccessException": "PERMISSION_DENIED",
    "FileLoadException": "MISSING_MODULE",  # an assembly that cannot be loaded
    "DllNotFoundException": "MISSING_MODULE",  # a native library that is not installed
    "TypeLoadException": "MISSING_MODULE",  # an assembly of another version
    "MissingMethodException": "MISSING_MODULE",  # as the JVM's NoSuchMethodError
    "BadImageFormatException": "EXEC_FORMAT_ERROR",  # built for another architecture
    "PlatformNotSupportedException": "INVALID_REQUEST",
}
"""Runtime exception classes by the family their reference gives them."""
