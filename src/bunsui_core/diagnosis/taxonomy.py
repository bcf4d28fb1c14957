"""The standard taxonomies, decoded from the text: the vocabularies the world already uses.

Exception classes (Python's own hierarchy, read from `builtins`; the documented hierarchies
of common data libraries, library_classes.py; JVM classes), errno names, numbers and strerror
texts, SQLSTATE classes and PostgreSQL condition names, MySQL's numbered errors, HTTP
statuses, gRPC status codes, OAuth 2.0 error codes, AWS error-code families (also as the AWS
C++ SDK names them), libcurl's codes, Kubernetes/Docker/OCI reasons; language runtimes' codes
and texts (runtime_codes.py) and data services' codes (service_codes.py). They generalise because
every service prints them: an error nobody here has seen still carries `[Errno 28]` or
`SQLSTATE 57014`.

Every candidate found gets a strength; the strongest wins and, between equals, the one
written last (Python prints the raised exception last, the JVM its root cause last).
"""

from __future__ import annotations

import builtins
import errno
import os
from dataclasses import dataclass
from functools import cache

from bunsui_core.diagnosis import library_classes, runtime_codes, service_codes
from bunsui_core.diagnosis.patterns import TextPattern, literal_alternation, raw_pattern

SPECIFIC = 3
"""An exception class or a standard code that names one failure."""
PHRASE = 2
"""A standard message text (strerror, PostgreSQL) or an HTTP reason phrase alone."""
NAMING = 1
"""A naming convention (CamelCase words) or a broad class (DB-API OperationalError)."""


_AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
_CONNECTION_FAILED = "CONNECTION_FAILED"


@dataclass(frozen=True)
class Decoded:
    """A failure family read from the text, and the evidence it was read from."""

    code: str
    evidence: str
    strength: int
    position: int
    socket: bool = False
    """Read from the socket's own error (an errno or its strerror text), not from a class or
    a code that names the failure: what the operating system saw, which no wording outranks."""
    by_class: bool = False
    """Read from an exception class (its table entry or its CamelCase words), not from a
    standard code or message. Code raises classes beyond their meaning (a `ValueError` for a
    role that could not be assumed), so their precision is measured apart (`CLASS_READING`)."""

    @property
    def precision_key(self) -> str:
        """Under which key a trained model keeps this kind of reading's precision."""
        return CLASS_READING if self.by_class else "taxonomy"


CLASS_READING = "taxonomy_class"
"""The key under which a trained model keeps the precision of the taxonomy's class readings;
its codes and messages keep the layer's own key."""


# ---- Python -------------------------------------------------------------------------------

_PYTHON_BASES: dict[str, str] = {
    "ImportError": "MISSING_MODULE",
    "FileNotFoundError": "MISSING_FILE",
    "NotADirectoryError": "MISSING_FILE",
    "PermissionError": "PERMISSION_DENIED",
    "ConnectionError": "CONNECTION_FAILED",
    "TimeoutError": "NETWORK_TIMEOUT",
    "MemoryError": "OUT_OF_MEMORY",
    "UnicodeError": "INVALID_DATA",
    "LookupError": "INVALID_DATA",
    "ValueError": "INVALID_DATA",
    "EOFError": "INVALID_DATA",
    "ArithmeticError": "CODE_DEFECT",
    "NameError": "CODE_DEFECT",
    "TypeError": "CODE_DEFECT",
    "AttributeError": "CODE_DEFECT",
    "AssertionError": "CODE_DEFECT",
    "RecursionError": "CODE_DEFECT",
    "NotImplementedError": "CODE_DEFECT",
    "SyntaxError": "CODE_DEFECT",
    "StopIteration": "CODE_DEFECT",
    "BufferError": "CODE_DEFECT",
    "ReferenceError": "CODE_DEFECT",
}
"""Python's hierarchy, by the base each builtin exception descends from (OSError by errno)."""

# CPython's own wording of TypeError and AttributeError (Objects/object.c, Objects/abstract.c),
# which survives where a wrapper prints the message without the class: `Failed to execute
# request: 'SSLSocket' object has no attribute 'connection'`.
_PYTHON_MESSAGES: dict[str, str] = {
    "object has no attribute": "CODE_DEFECT",
    "object is not subscriptable": "CODE_DEFECT",
    "object is not callable": "CODE_DEFECT",
    "object is not iterable": "CODE_DEFECT",
    "unsupported operand type(s) for": "CODE_DEFECT",
    "unhashable type": "CODE_DEFECT",
}

# A refused login in the words servers and drivers use for it (MySQL's `Access denied for
# user`, SQL Server's `Login failed for user`, Oracle's `logon denied`, Db2's `USERNAME AND/OR
# PASSWORD INVALID`, `Invalid credentials`; PostgreSQL's `password authentication failed` is
# read with its SQLSTATE, 28P01). Drivers raise it with their connection class or SQLSTATE
# 08001/08004, whose standard meaning ("unable to establish", "server rejected") covers a
# refusal as well as an unreachable server, so this wording decides between them (`decode`).
_LOGIN_REFUSED = (
    r"(?i)\b((?:incorrect|invalid|wrong|bad) (?:user ?name|user ?id|login|password|credentials)"
    r"(?: (?:and/or|or|and) password)?"
    r"|(?:user ?name|user ?id)(?: and/or| or| and) password (?:is |are |was )?"
    r"(?:invalid|incorrect|wrong)"
    r"|log[oi]n (?:failed|denied)|access denied for user)\b"
)

# Broad classes (PEP 249's, which every Python database driver raises, and urllib3's retry
# wrapper): a weak reading that a more specific class or code in the text outweighs.
_BROAD_CLASSES: dict[str, str] = {
    "ProgrammingError": "CODE_DEFECT",
    "NotSupportedError": "CODE_DEFECT",
    "OperationalError": "CONNECTION_FAILED",
    "InterfaceError": "CONNECTION_FAILED",
    "MaxRetryError": "CONNECTION_FAILED",
}

# socket's own lower-case classes, which the class pattern finds only as `socket.<name>`.
_SOCKET_CLASSES: dict[str, str] = {
    "gaierror": "NAME_RESOLUTION_FAILED",
    "timeout": "NETWORK_TIMEOUT",
}

_JVM_CLASSES: dict[str, str] = {
    "OutOfMemoryError": "OUT_OF_MEMORY",
    "StackOverflowError": "CODE_DEFECT",
    "ClassNotFoundException": "MISSING_MODULE",
    "NoClassDefFoundError": "MISSING_MODULE",
    "NoSuchMethodError": "MISSING_MODULE",
    "NoSuchFieldError": "MISSING_MODULE",
    "UnsatisfiedLinkError": "MISSING_MODULE",
    "NullPointerException": "CODE_DEFECT",
    "ClassCastException": "CODE_DEFECT",
    "ArithmeticException": "CODE_DEFECT",
    "ArrayIndexOutOfBoundsException": "CODE_DEFECT",
    "IndexOutOfBoundsException": "CODE_DEFECT",
    "StringIndexOutOfBoundsException": "CODE_DEFECT",
    "IllegalStateException": "CODE_DEFECT",
    "IllegalArgumentException": "CODE_DEFECT",
    "UnsupportedOperationException": "CODE_DEFECT",
    "ConcurrentModificationException": "CODE_DEFECT",
    "MatchError": "CODE_DEFECT",
    "NumberFormatException": "INVALID_DATA",
    "DateTimeParseException": "INVALID_DATA",
    "JsonParseException": "INVALID_DATA",
    "JsonMappingException": "INVALID_DATA",
    "MismatchedInputException": "INVALID_DATA",
    "InputMismatchException": "INVALID_DATA",
    "MalformedInputException": "INVALID_DATA",
    "CharacterCodingException": "INVALID_DATA",
    "FileNotFoundException": "MISSING_FILE",
    "NoSuchFileException": "MISSING_FILE",
    "AccessDeniedException": "PERMISSION_DENIED",
    "SecurityException": "PERMISSION_DENIED",
    "ConnectException": "CONNECTION_FAILED",
    "NoRouteToHostException": "CONNECTION_FAILED",
    "SocketException": "CONNECTION_FAILED",
    "SocketTimeoutException": "NETWORK_TIMEOUT",
    "UnknownHostException": "NAME_RESOLUTION_FAILED",
    "TimeoutException": "DEADLINE_EXCEEDED",
    "SQLTimeoutException": "DEADLINE_EXCEEDED",
    "SQLTransientConnectionException": "CONNECTION_FAILED",
    "SQLNonTransientConnectionException": "CONNECTION_FAILED",
    "SQLRecoverableException": "CONNECTION_FAILED",
    "SQLIntegrityConstraintViolationException": "INVALID_DATA",
    "SQLDataException": "INVALID_DATA",
    "SQLSyntaxErrorException": "CODE_DEFECT",
    "SQLInvalidAuthorizationSpecException": "AUTHENTICATION_FAILED",
    "SQLTransactionRollbackException": "TRANSACTION_CONFLICT",
}

_GENERIC_CLASSES = frozenset(
    {
        "Exception",
        "BaseException",
        "Error",
        "RuntimeError",
        "RuntimeException",
        "OSError",
        "IOError",
        "EnvironmentError",
        "IOException",
        "SystemExit",
        "KeyboardInterrupt",
        "GeneratorExit",
        "ClientError",
        "HTTPError",
        "BotoCoreError",
        "SQLException",
        "DatabaseError",
        "InternalError",
        "CalledProcessError",
        "SparkException",
        "Py4JJavaError",
        "AirflowException",
        "ExecutionError",
        "UnexpectedStatusException",
    }
)
"""Classes that name no family by themselves: their message's codes decide."""


@cache
def _python_builtin(name: str) -> str | None:
    """The family of a builtin exception, by walking its real MRO."""
    cls = getattr(builtins, name, None)
    if not isinstance(cls, type) or not issubclass(cls, BaseException):
        return None
    for base in cls.__mro__:
        code = _PYTHON_BASES.get(base.__name__)
        if code:
            return code
    return None


def _class_family(name: str) -> tuple[str, int] | None:
    """A class's family from the Python, library, JVM, runtime and service tables, else None."""
    if name in _GENERIC_CLASSES:
        return None
    builtin = _python_builtin(name) or _python_builtin(library_classes.BASES.get(name, ""))
    if builtin:
        return builtin, SPECIFIC
    if name in _BROAD_CLASSES:
        return _BROAD_CLASSES[name], NAMING
    code = (
        library_classes.FAMILIES.get(name)
        or _SOCKET_CLASSES.get(name)
        or _JVM_CLASSES.get(name)
        or runtime_codes.CLASSES.get(name)
        or service_codes.CLASSES.get(name)
    )
    return (code, SPECIFIC) if code else None


# ---- CamelCase naming conventions -----------------------------------------------------------

_NAMING_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("Throttl", "TooManyRequests", "RateLimit", "SlowDown"), "RATE_LIMITED"),
    (
        ("AccessDenied", "Forbidden", "NotAuthorized", "PermissionDenied", "Unauthorized"),
        "PERMISSION_DENIED",
    ),
    (
        ("ExpiredToken", "TokenExpired", "Credential", "Authentication", "InvalidToken"),
        "AUTHENTICATION_FAILED",
    ),
    (("ModuleNotFound", "ImportModule", "ClassNotFound", "PackageNotFound"), "MISSING_MODULE"),
    (("FileNotFound", "NoSuchFile", "PathNotFound"), "MISSING_FILE"),
    (("NotFound", "NoSuch", "DoesNotExist", "NotExist"), "MISSING_RESOURCE"),
    (("ConnectTimeout", "ConnectionTimeout", "LoginTimeout"), "CONNECT_TIMEOUT"),
    (("ReadTimeout", "SocketTimeout"), "NETWORK_TIMEOUT"),
    (("Timeout", "TimedOut", "Deadline"), "DEADLINE_EXCEEDED"),
    (("Connection", "Connect", "Disconnect", "Unreachable"), "CONNECTION_FAILED"),
    (("OutOfMemory", "MemoryError", "MemoryLimit"), "OUT_OF_MEMORY"),
    (
        ("Unavailable", "InternalServer", "ServiceException", "InternalFailure"),
        "SERVICE_UNAVAILABLE",
    ),
    (("Parse", "Parser", "Decode", "Schema", "Malformed", "Serializ"), "INVALID_DATA"),
    (
        ("Validation", "InvalidParameter", "InvalidArgument", "InvalidRequest", "Config"),
        "INVALID_REQUEST",
    ),
    (("NullPointer", "NullReference"), "CODE_DEFECT"),
)


def _naming_family(name: str) -> str | None:
    """The family a CamelCase class name announces (ReadTimeoutException -> NETWORK_TIMEOUT)."""
    for needles, code in _NAMING_RULES:
        if any(needle in name for needle in needles):
            return code
    return None


# ---- AWS error codes -----------------------------------------------------------------------

_AWS_PREFIXED: dict[str, str | None] = {
    "Runtime.ImportModuleError": "MISSING_MODULE",
    "Runtime.HandlerNotFound": "INVALID_REQUEST",
    "Runtime.UserCodeSyntaxError": "CODE_DEFECT",
    "Runtime.OutOfMemory": "LAMBDA_OUT_OF_MEMORY",
    "Runtime.InvalidEntrypoint": "EXEC_FORMAT_ERROR",
    "Runtime.InvalidRuntime": "INVALID_REQUEST",
    "Runtime.CallbackHandlerDeprecated": "INVALID_REQUEST",
    "Runtime.MarshalError": "INVALID_DATA",
    "Runtime.ExitError": None,
    "Runtime.Unknown": None,
    "States.Timeout": "STATES_TIMEOUT",
    "States.HeartbeatTimeout": "STATES_TIMEOUT",
    "States.Permissions": "PERMISSION_DENIED",
    "States.DataLimitExceeded": "STATES_DATA_LIMIT_EXCEEDED",
    "States.Runtime": "STATES_RUNTIME",
    "States.ResultPathMatchFailure": "INVALID_REQUEST",
    "States.ParameterPathFailure": "INVALID_REQUEST",
    "States.IntrinsicFailure": "INVALID_REQUEST",
    "States.QueryEvaluationError": "INVALID_REQUEST",
    "States.NoChoiceMatched": "INVALID_DATA",
    "States.TaskFailed": None,
    "States.BranchFailed": None,
    "States.ALL": None,
    "Sandbox.Timedout": "LAMBDA_TIMEOUT",
    "Lambda.ServiceException": "LAMBDA_SERVICE_ERROR",
    "Lambda.AWSLambdaException": None,
    "Lambda.Unknown": None,
}

_AWS_FAMILIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        (
            "Throttl",
            "TooManyRequests",
            "SlowDown",
            "RequestLimitExceeded",
            "ProvisionedThroughputExceeded",
            "LimitExceeded",
            "TOOMANYREQUESTS",
        ),
        "AWS_THROTTLING",
    ),
    (("ExpiredToken", "RequestExpired", "TokenRefreshRequired"), "EXPIRED_CREDENTIALS"),
    (
        (
            "InvalidClientTokenId",
            "UnrecognizedClient",
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            "AuthFailure",
            "IncompleteSignature",
            "MissingAuthenticationToken",
            "InvalidSignature",
            "NotAuthorizedException",
            "UNAUTHORIZED",
        ),
        "AUTHENTICATION_FAILED",
    ),
    (
        (
            "AccessDenied",
            "UnauthorizedOperation",
            "AuthorizationError",
            "Forbidden",
            "UnauthorizedAccess",
            "DENIED",
        ),
        "ACCESS_DENIED",
    ),
    (("NoSuchKey", "NoSuchBucket"), "S3_OBJECT_MISSING"),
    (
        ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "RepositoryNotFound", "ImageNotFound"),
        "IMAGE_UNAVAILABLE",
    ),
    (("NotFound", "NoSuch", "NonExistent"), "MISSING_RESOURCE"),
    (
        (
            "ValidationException",
            "ValidationError",
            "InvalidParameter",
            "InvalidRequest",
            "MissingParameter",
            "MalformedPolicy",
            "InvalidArgument",
            "SerializationException",
            "InvalidInput",
        ),
        "INVALID_REQUEST",
    ),
    (
        (
            "ServiceUnavailable",
            "InternalFailure",
            "InternalError",
            "InternalServerError",
            "ServiceException",
            "InternalServiceError",
            "ServerException",
        ),
        "SERVICE_UNAVAILABLE",
    ),
    (("RequestTimeout",), "NETWORK_TIMEOUT"),
    (("NetworkConnection",), "CONNECTION_FAILED"),
    (("TransactionConflict", "TransactionCanceled"), "TRANSACTION_CONFLICT"),
)


def _aws_family(code: str) -> str | None:
    if code in _AWS_PREFIXED:
        return _AWS_PREFIXED[code]
    for needles, family in _AWS_FAMILIES:
        if any(needle in code for needle in needles):
            return family
    return None


# ---- errno --------------------------------------------------------------------------------

# As PEP 3151 splits OSError: EACCES and EPERM are PermissionError; EROFS stays a plain
# OSError, since no grant fixes a read-only mount: where the job writes is configured wrong.
_ERRNO_FAMILIES: dict[str, str] = {
    "ENOENT": "MISSING_FILE",
    "ENOTDIR": "MISSING_FILE",
    "EACCES": "PERMISSION_DENIED",
    "EPERM": "PERMISSION_DENIED",
    "EROFS": "READ_ONLY_FILESYSTEM",
    "ENOSPC": "DISK_FULL",
    "EDQUOT": "DISK_FULL",
    "EFBIG": "DISK_FULL",
    "EMFILE": "RESOURCE_EXHAUSTED",
    "ENFILE": "RESOURCE_EXHAUSTED",
    "ENOBUFS": "RESOURCE_EXHAUSTED",
    "EMLINK": "RESOURCE_EXHAUSTED",
    "EUSERS": "RESOURCE_EXHAUSTED",
    "ENOMEM": "OUT_OF_MEMORY",
    "ETIMEDOUT": "CONNECT_TIMEOUT",  # strerror "Connection timed out": no answer to connect
    "ECONNREFUSED": "CONNECTION_FAILED",
    "ECONNRESET": "CONNECTION_FAILED",
    "ECONNABORTED": "CONNECTION_FAILED",
    "EPIPE": "CONNECTION_FAILED",
    "EHOSTUNREACH": "CONNECTION_FAILED",
    "EHOSTDOWN": "CONNECTION_FAILED",
    "ENETUNREACH": "CONNECTION_FAILED",
    "ENETDOWN": "CONNECTION_FAILED",
    "ENETRESET": "CONNECTION_FAILED",
    "ENOTCONN": "CONNECTION_FAILED",
    "EADDRNOTAVAIL": "CONNECTION_FAILED",
    "ENOEXEC": "EXEC_FORMAT_ERROR",
    "EISDIR": "MISSING_FILE",  # a directory where the job expects a file: a wrong path
    "EIO": "STORAGE_IO_ERROR",
    "ESTALE": "STORAGE_IO_ERROR",  # a stale NFS file handle
    "EADDRINUSE": "INVALID_REQUEST",  # another process holds the port the job binds
}
# getaddrinfo's codes (RFC 3493), negative in Python's `[Errno -2]`, and Node's name for them.
_RESOLVER_CODES: dict[str, str] = {
    "EAI_NONAME": "NAME_RESOLUTION_FAILED",
    "EAI_AGAIN": "NAME_RESOLUTION_FAILED",
    "EAI_NODATA": "NAME_RESOLUTION_FAILED",
    "EAI_FAIL": "NAME_RESOLUTION_FAILED",
    "ENOTFOUND": "NAME_RESOLUTION_FAILED",
}
_RESOLVER_NUMBERS = {-2: "EAI_NONAME", -3: "EAI_AGAIN", -5: "EAI_NODATA", -4: "EAI_FAIL"}
_RESOLVER_TEXTS = (
    "Name or service not known",
    "Temporary failure in name resolution",
    "nodename nor servname provided",
    "No address associated with hostname",
)


def _errno_name(number: int) -> str | None:
    if number < 0:
        return _RESOLVER_NUMBERS.get(number)
    return errno.errorcode.get(number)


@cache
def _strerror_table() -> dict[str, str]:
    """This platform's strerror text for each errno we map, lower-cased, to its family."""
    table = {}
    for name, family in _ERRNO_FAMILIES.items():
        number = getattr(errno, name, None)
        if number is not None:
            table[os.strerror(number).lower()] = family
    table.update({text.lower(): "NAME_RESOLUTION_FAILED" for text in _RESOLVER_TEXTS})
    return table


# ---- SQLSTATE and PostgreSQL condition names -------------------------------------------------

_SQLSTATE_EXACT: dict[str, str] = {
    "40001": "TRANSACTION_CONFLICT",
    "40P01": "TRANSACTION_CONFLICT",
    "42501": "PERMISSION_DENIED",
    "42P01": "MISSING_RESOURCE",
    "42703": "MISSING_RESOURCE",
    "42704": "MISSING_RESOURCE",
    "42883": "MISSING_RESOURCE",
    "42P02": "MISSING_RESOURCE",
    "42S02": "MISSING_RESOURCE",
    "42S22": "MISSING_RESOURCE",
    "3D000": "MISSING_RESOURCE",
    "3F000": "MISSING_RESOURCE",
    "53100": "DISK_FULL",
    "53200": "SERVER_MEMORY_LIMIT",  # the server's memory (work_mem...), not the job's
    "53300": "CONNECTIONS_EXHAUSTED",
    "57014": "DEADLINE_EXCEEDED",
    "HYT00": "DEADLINE_EXCEEDED",  # ODBC: timeout expired (query timeout)
    "HYT01": "CONNECT_TIMEOUT",  # ODBC: connection timeout expired
    "55P03": "LOCK_WAIT_TIMEOUT",  # PostgreSQL lock_not_available (lock_timeout, NOWAIT)
    "57P01": "SERVICE_UNAVAILABLE",
    "57P02": "SERVICE_UNAVAILABLE",
    "57P03": "SERVICE_UNAVAILABLE",
    "25006": "INVALID_REQUEST",  # read_only_sql_transaction: a write sent to a read replica
    "25P02": "CODE_DEFECT",  # in_failed_sql_transaction: statements after an error, no rollback
    "58030": "STORAGE_IO_ERROR",  # io_error: the server could not read or write a file
    "58P01": "MISSING_MODULE",  # undefined_file: mostly an extension's library ($libdir/...)
}
_SQLSTATE_CLASSES: dict[str, str] = {
    "02": "MISSING_RESOURCE",  # no data: what the statement asked for is not there
    "08": "CONNECTION_FAILED",
    "21": "INVALID_DATA",  # cardinality violation: more rows than the statement allows
    "22": "INVALID_DATA",
    "23": "INVALID_DATA",
    "28": "AUTHENTICATION_FAILED",
    "40": "TRANSACTION_CONFLICT",
    "42": "CODE_DEFECT",
    "53": "RESOURCE_EXHAUSTED",
    "0A": "INVALID_REQUEST",
}


# MySQL's numbered errors (MySQL Error Reference: server 1xxx/3xxx, client 2xxx), which its
# drivers print without a SQLSTATE. Each family is the one of the SQLSTATE the reference gives
# the number, or the number's own meaning where that is only HY000 or broader than the number.
_MYSQL_ERRORS: dict[int, tuple[str, str]] = {
    1021: ("ER_DISK_FULL", "DISK_FULL"),
    1037: ("ER_OUTOFMEMORY", "SERVER_MEMORY_LIMIT"),  # HY001, the server's memory
    1038: ("ER_OUT_OF_SORTMEMORY", "SERVER_MEMORY_LIMIT"),  # HY001, "increase sort_buffer_size"
    1040: ("ER_CON_COUNT_ERROR", "CONNECTIONS_EXHAUSTED"),  # 08004, too many connections
    1044: ("ER_DBACCESS_DENIED_ERROR", "PERMISSION_DENIED"),
    1045: ("ER_ACCESS_DENIED_ERROR", "AUTHENTICATION_FAILED"),  # 28000
    1046: ("ER_NO_DB_ERROR", "MISSING_RESOURCE"),  # 3D000
    1048: ("ER_BAD_NULL_ERROR", "INVALID_DATA"),  # 23000
    1049: ("ER_BAD_DB_ERROR", "MISSING_RESOURCE"),
    1051: ("ER_BAD_TABLE_ERROR", "MISSING_RESOURCE"),  # 42S02
    1054: ("ER_BAD_FIELD_ERROR", "MISSING_RESOURCE"),  # 42S22
    1062: ("ER_DUP_ENTRY", "INVALID_DATA"),  # 23000
    1064: ("ER_PARSE_ERROR", "CODE_DEFECT"),  # 42000
    1114: ("ER_RECORD_FILE_FULL", "DISK_FULL"),
    1130: ("ER_HOST_NOT_PRIVILEGED", "PERMISSION_DENIED"),
    1142: ("ER_TABLEACCESS_DENIED_ERROR", "PERMISSION_DENIED"),
    1143: ("ER_COLUMNACCESS_DENIED_ERROR", "PERMISSION_DENIED"),
    1146: ("ER_NO_SUCH_TABLE", "MISSING_RESOURCE"),  # 42S02
    1205: ("ER_LOCK_WAIT_TIMEOUT", "LOCK_WAIT_TIMEOUT"),
    1206: ("ER_LOCK_TABLE_FULL", "RESOURCE_EXHAUSTED"),
    1213: ("ER_LOCK_DEADLOCK", "TRANSACTION_CONFLICT"),  # 40001
    1227: ("ER_SPECIFIC_ACCESS_DENIED_ERROR", "PERMISSION_DENIED"),
    1264: ("ER_WARN_DATA_OUT_OF_RANGE", "INVALID_DATA"),  # 22003
    1292: ("ER_TRUNCATED_WRONG_VALUE", "INVALID_DATA"),  # 22007
    1366: ("ER_TRUNCATED_WRONG_VALUE_FOR_FIELD", "INVALID_DATA"),
    1406: ("ER_DATA_TOO_LONG", "INVALID_DATA"),  # 22001
    1451: ("ER_ROW_IS_REFERENCED_2", "INVALID_DATA"),  # 23000
    1452: ("ER_NO_REFERENCED_ROW_2", "INVALID_DATA"),  # 23000
    1698: ("ER_ACCESS_DENIED_NO_PASSWORD_ERROR", "AUTHENTICATION_FAILED"),  # 28000
    3024: ("ER_QUERY_TIMEOUT", "DEADLINE_EXCEEDED"),
    2002: ("CR_CONNECTION_ERROR", "CONNECTION_FAILED"),
    2003: ("CR_CONN_HOST_ERROR", "CONNECTION_FAILED"),
    2005: ("CR_UNKNOWN_HOST", "NAME_RESOLUTION_FAILED"),
    2006: ("CR_SERVER_GONE_ERROR", "CONNECTION_FAILED"),
    2013: ("CR_SERVER_LOST", "CONNECTION_FAILED"),
    2055: ("CR_SERVER_LOST_EXTENDED", "CONNECTION_FAILED"),
}
_MYSQL_SYMBOLS = dict(_MYSQL_ERRORS.values())


# libcurl's error codes (libcurl-errors(3)), under the client libraries that use it: R, PHP,
# git, the AWS C++ SDK. Printed `curl: (28) ...`, `cURL error 28:`, `curlCode: 28`, or by name.
_CURL_ERRORS: dict[int, tuple[str, str]] = {
    5: ("CURLE_COULDNT_RESOLVE_PROXY", "NAME_RESOLUTION_FAILED"),
    6: ("CURLE_COULDNT_RESOLVE_HOST", "NAME_RESOLUTION_FAILED"),
    7: ("CURLE_COULDNT_CONNECT", "CONNECTION_FAILED"),
    18: ("CURLE_PARTIAL_FILE", "CONNECTION_FAILED"),
    28: ("CURLE_OPERATION_TIMEDOUT", "NETWORK_TIMEOUT"),
    35: ("CURLE_SSL_CONNECT_ERROR", "CONNECTION_FAILED"),
    47: ("CURLE_TOO_MANY_REDIRECTS", "INVALID_REQUEST"),
    52: ("CURLE_GOT_NOTHING", "CONNECTION_FAILED"),
    55: ("CURLE_SEND_ERROR", "CONNECTION_FAILED"),
    56: ("CURLE_RECV_ERROR", "CONNECTION_FAILED"),
    60: ("CURLE_PEER_FAILED_VERIFICATION", "INVALID_REQUEST"),
    67: ("CURLE_LOGIN_DENIED", "AUTHENTICATION_FAILED"),
    77: ("CURLE_SSL_CACERT_BADFILE", "INVALID_REQUEST"),
}
_CURL_SYMBOLS = dict(_CURL_ERRORS.values())


def sqlstate_family(state: str) -> str | None:
    """The family of a five-character SQLSTATE (exact code first, then its class)."""
    return _SQLSTATE_EXACT.get(state) or _SQLSTATE_CLASSES.get(state[:2])


# PostgreSQL's condition names (Appendix A), as psycopg's error classes spell them.
_PG_CONDITIONS: dict[str, str] = {
    "UndefinedTable": "42P01",
    "UndefinedColumn": "42703",
    "UndefinedFunction": "42883",
    "UndefinedObject": "42704",
    "InvalidSchemaName": "3F000",
    "InvalidCatalogName": "3D000",
    "QueryCanceled": "57014",
    "LockNotAvailable": "55P03",
    "SerializationFailure": "40001",
    "DeadlockDetected": "40P01",
    "UniqueViolation": "23505",
    "NotNullViolation": "23502",
    "ForeignKeyViolation": "23503",
    "CheckViolation": "23514",
    "InvalidTextRepresentation": "22P02",
    "NumericValueOutOfRange": "22003",
    "StringDataRightTruncation": "22001",
    "DivisionByZero": "22012",
    "InvalidDatetimeFormat": "22007",
    "DatetimeFieldOverflow": "22008",
    "InsufficientPrivilege": "42501",
    "InvalidPassword": "28P01",
    "InvalidAuthorizationSpecification": "28000",
    "DiskFull": "53100",
    "OutOfMemory": "53200",
    "TooManyConnections": "53300",
    "AdminShutdown": "57P01",
    "CannotConnectNow": "57P03",
    "ConnectionFailure": "08006",
    "ConnectionException": "08000",
    "SqlclientUnableToEstablishSqlconnection": "08001",
    "ConnectionDoesNotExist": "08003",
    "ProtocolViolation": "08P01",
    "CardinalityViolation": "21000",
    "ExclusionViolation": "23P01",
    "RestrictViolation": "23001",
    "NullValueNotAllowed": "22004",
    "InvalidParameterValue": "22023",
    "CharacterNotInRepertoire": "22021",
    "UntranslatableCharacter": "22P05",
    "InvalidBinaryRepresentation": "22P03",
    "InvalidJsonText": "22032",
    "ReadOnlySqlTransaction": "25006",
    "InFailedSqlTransaction": "25P02",
    "TransactionRollback": "40000",
    "DuplicateTable": "42P07",
    "DuplicateObject": "42710",
    "DuplicateColumn": "42701",
    "DuplicateSchema": "42P06",
    "DuplicateDatabase": "42P04",
    "AmbiguousColumn": "42702",
    "AmbiguousFunction": "42725",
    "GroupingError": "42803",
    "DatatypeMismatch": "42804",
    "WrongObjectType": "42809",
    "UndefinedParameter": "42P02",
    "FeatureNotSupported": "0A000",
    "InsufficientResources": "53000",
    "CrashShutdown": "57P02",
    "IoError": "58030",
    "UndefinedFile": "58P01",
}

# PostgreSQL server and libpq message texts, by the SQLSTATE they are raised with.
_PG_MESSAGES: dict[str, str] = {
    "canceling statement due to statement timeout": "57014",
    "canceling statement due to user request": "57014",
    "canceling statement due to lock timeout": "55P03",
    "could not obtain lock on": "55P03",
    "deadlock detected": "40P01",
    "could not serialize access": "40001",
    "duplicate key value violates unique constraint": "23505",
    "violates not-null constraint": "23502",
    "violates foreign key constraint": "23503",
    "violates check constraint": "23514",
    "invalid input syntax for": "22P02",
    "value too long for type": "22001",
    "permission denied for": "42501",
    "password authentication failed": "28P01",
    "server closed the connection unexpectedly": "08006",
    "could not connect to server": "08006",
    "terminating connection due to administrator command": "57P01",
    "the database system is starting up": "57P03",
    "the database system is shutting down": "57P03",
    "too many clients already": "53300",
    "remaining connection slots are reserved": "53300",
    "could not extend file": "53100",
    "current transaction is aborted, commands ignored until end of transaction block": "25P02",
    "in a read-only transaction": "25006",  # cannot execute INSERT in a read-only transaction
    "more than one row returned by a subquery used as an expression": "21000",
}


# ---- HTTP, gRPC, Kubernetes, Docker -----------------------------------------------------------

_HTTP_STATUSES: dict[int, str] = {
    400: "INVALID_REQUEST",
    401: "AUTHENTICATION_FAILED",
    403: "PERMISSION_DENIED",
    404: "MISSING_RESOURCE",
    405: "INVALID_REQUEST",
    408: "NETWORK_TIMEOUT",
    410: "MISSING_RESOURCE",
    413: "INVALID_DATA",
    422: "INVALID_DATA",
    429: "RATE_LIMITED",
    500: "SERVICE_UNAVAILABLE",
    502: "SERVICE_UNAVAILABLE",
    503: "SERVICE_UNAVAILABLE",
    504: "SERVICE_UNAVAILABLE",  # a remote 5xx: NETWORK, retried with backoff
    507: "DISK_FULL",
}
# RFC 9110 reason phrases, as servers print them (Title Case).
_HTTP_REASONS: dict[str, int] = {
    "Bad Request": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "Not Found": 404,
    "Request Timeout": 408,
    "Payload Too Large": 413,
    "Request Entity Too Large": 413,
    "Unprocessable Entity": 422,
    "Too Many Requests": 429,
    "Internal Server Error": 500,
    "Bad Gateway": 502,
    "Service Unavailable": 503,
    "Gateway Timeout": 504,
    "Insufficient Storage": 507,
}

# gRPC's canonical status codes (grpc.github.io/grpc/core/md_doc_statuscodes.html), as
# Python (`StatusCode.UNAVAILABLE`), Java (`StatusRuntimeException: UNAVAILABLE`), Node
# (`14 UNAVAILABLE:`) and Go (`rpc error: code = Unavailable`) print them.
_GRPC_STATUSES: dict[str, str] = {
    "UNAVAILABLE": "SERVICE_UNAVAILABLE",
    "DEADLINE_EXCEEDED": "NETWORK_TIMEOUT",  # the client's deadline on the call
    "RESOURCE_EXHAUSTED": "RATE_LIMITED",
    "PERMISSION_DENIED": "PERMISSION_DENIED",
    "UNAUTHENTICATED": "AUTHENTICATION_FAILED",
    "NOT_FOUND": "MISSING_RESOURCE",
    "INVALID_ARGUMENT": "INVALID_REQUEST",
    "FAILED_PRECONDITION": "INVALID_REQUEST",
    "ALREADY_EXISTS": "INVALID_REQUEST",
    "OUT_OF_RANGE": "INVALID_DATA",
    "UNIMPLEMENTED": "INVALID_REQUEST",
    "INTERNAL": "SERVICE_UNAVAILABLE",
    "ABORTED": "TRANSACTION_CONFLICT",
}
# OAuth 2.0's error codes (RFC 6749 section 5.2, RFC 6750 section 3.1, RFC 8628 section 3.5), as
# token endpoints return them (`{"error": "invalid_grant"}`) and clients print them
# (`RefreshError: ('invalid_grant: Token has been expired or revoked.'`). Only the codes no
# other vocabulary spells the same way; `server_error` or `access_denied` name no standard here.
_OAUTH_ERRORS: dict[str, str] = {
    "invalid_grant": "AUTHENTICATION_FAILED",  # the refresh token or code is expired or revoked
    "invalid_client": "AUTHENTICATION_FAILED",  # the client's own credentials were refused
    "invalid_token": "AUTHENTICATION_FAILED",  # the access token is expired, revoked or malformed
    "expired_token": "AUTHENTICATION_FAILED",  # the device code expired before it was approved
    "unauthorized_client": "PERMISSION_DENIED",  # the client may not use this grant type
    "insufficient_scope": "PERMISSION_DENIED",  # the token lacks the scope the call needs
    "invalid_scope": "INVALID_REQUEST",  # the scope asked for is unknown or malformed
    "unsupported_grant_type": "INVALID_REQUEST",
}
_GRPC_BY_GO_NAME = {
    "".join(part.capitalize() for part in name.split("_")): name for name in _GRPC_STATUSES
}

_ORCHESTRATOR_REASONS: dict[str, str] = {
    "OOMKilled": "OUT_OF_MEMORY",
    "Evicted": "CONTAINER_EVICTED",
    "Preempted": "CONTAINER_EVICTED",
    "ImagePullBackOff": "IMAGE_UNAVAILABLE",
    "ErrImagePull": "IMAGE_UNAVAILABLE",
    "ErrImageNeverPull": "IMAGE_UNAVAILABLE",
    "InvalidImageName": "IMAGE_UNAVAILABLE",
    "CrashLoopBackOff": "CRASH_LOOP",
    "CreateContainerConfigError": "INVALID_REQUEST",
    "CreateContainerError": "INVALID_REQUEST",
    "RunContainerError": "INVALID_REQUEST",
    "FailedScheduling": "RESOURCE_EXHAUSTED",
    "MODULE_NOT_FOUND": "MISSING_MODULE",
    "ERR_MODULE_NOT_FOUND": "MISSING_MODULE",
    "CERTIFICATE_VERIFY_FAILED": "INVALID_REQUEST",
}
_ORCHESTRATOR_PHRASES: dict[str, str] = {
    "Cannot find module": "MISSING_MODULE",
    "pull access denied": "IMAGE_UNAVAILABLE",
    "manifest unknown": "IMAGE_UNAVAILABLE",
    "No module named": "MISSING_MODULE",
    "maximum recursion depth exceeded": "CODE_DEFECT",  # CPython's RecursionError text
    "command not found": "MISSING_EXECUTABLE",  # POSIX shells (exit status 127)
    # a job's command line its program refused: glibc getopt, CPython's argparse, Click
    "invalid option": "INVALID_REQUEST",
    "unrecognized option": "INVALID_REQUEST",
    "option requires an argument": "INVALID_REQUEST",
    "the following arguments are required": "INVALID_REQUEST",
    "unrecognized arguments": "INVALID_REQUEST",
    "invalid choice": "INVALID_REQUEST",
    "No such option": "INVALID_REQUEST",
    "Missing option": "INVALID_REQUEST",
    "Missing argument": "INVALID_REQUEST",
    "Got unexpected extra argument": "INVALID_REQUEST",
    "executable file not found": "MISSING_EXECUTABLE",  # Go's os/exec (runc, Docker)
    # a Kubernetes Job's or pod's activeDeadlineSeconds (reason DeadlineExceeded)
    "was active longer than specified deadline": "DEADLINE_EXCEEDED",
    "active on the node longer than the specified deadline": "DEADLINE_EXCEEDED",
    "Insufficient memory": "RESOURCE_EXHAUSTED",
    "Insufficient cpu": "RESOURCE_EXHAUSTED",
}


# ---- the decoders ------------------------------------------------------------------------------

_CLASS_NAME = (
    r"\b((?:[A-Za-z_][A-Za-z0-9_]*\.)*"
    r"[A-Za-z0-9_]*(?:Error|Exception|Exit|Timeout|TimedOut|Failure|Fault|Expired|"
    r"NotFound|Denied|Forbidden|Unauthorized|Unauthenticated|Unavailable|Disconnected|Timedout|"
    r"Invalid|Read|Interrupt|Iteration|Exceeded|Exhausted|BadRequest|Conflict|Requests|"
    r"Datetime|Timedelta|ResultFound|ResultsFound|TooLarge|Reconnect|URI)|"
    r"socket\.(?:timeout|gaierror))\b"
)
_PG_ERROR_CLASS = r"\bpsycopg2?\.errors\.([A-Za-z]+)\b"
_ERRNO_NUMBER = r"(?i)\[?\berrno\]?[ :=]*(-?\d{1,4})\b"
_ERRNO_NAME = r"\b(E[A-Z0-9]{2,14}|EAI_[A-Z]{4,8})\b"
_SQLSTATE = (
    r"(?i:\bSQL ?STATE\b|\bsql_state\b|\bpgcode\b|\bSQL state)[\s:=\[(\"']*"
    r"([0-9A-Z]{5})\b|\b\d{6} \(([0-9A-Z]{5})\)|\bERROR \d{4} \(([0-9A-Z]{5})\)"
)
# How MySQL clients print a number: PyMySQL/MySQLdb `(1146, "...")`, Go and the CLI
# `Error 1213:` / `ERROR 1146 (42S02)`, Workbench `Error Code: 2006`, PHP PDO `[HY000] [2002]`,
# JSON `"errno": 1146`; Node's driver prints the symbol (`ER_LOCK_DEADLOCK`).
_MYSQL_NUMBER = (
    r"\((\d{4}), [\"']|(?i:\berror(?: code:)?) (\d{4})\b|\] \[(\d{4})\]|"
    r"\b(?:errno|code)[\"']?\s*[:=]\s*(\d{4})\b"
)
_CURL_NUMBER = r"\bcurl: \((\d{1,2})\)|(?i:\bcurl error:? )(\d{1,2})\b|\bcurlCode: (\d{1,2})\b"
_CURL_SYMBOL = r"\b(CURLE_[A-Z_]{3,40})\b"
_MYSQL_SYMBOL = r"\b((?:ER|CR)_[A-Z0-9_]{3,40})\b"
_HTTP_STATUS = (
    r"(?:\bHTTP(?:/[\d.]+)?|(?i:\bstatus(?:[ _]?code)?|\bresponse code|\bstatuscode))"
    r"[\"':= ]{1,4}([1-5]\d\d)\b|\b([45]\d\d) (?:Client|Server) Error\b|"
    r"\bHTTP Error ([45]\d\d):|"  # urllib's HTTPError: 'HTTP Error %s: %s'
    r"<Response \[([45]\d\d)\]>"  # the repr of a requests Response
)
# The SDKs' spellings of a service error code; `api error Code:` is the AWS SDK for Go v2's
# (Terraform's AWS provider, eksctl, and other Go tools print it).
_AWS_CODE = (
    r"An error occurred \(([A-Za-z0-9_.]+)\)|A client error \(([A-Za-z0-9_.]+)\) occurred|"
    r"Error Code: ([A-Za-z0-9_.]+)|\bapi error ([A-Za-z0-9_.]+):|"
    r"\"(?:errorType|__type|Code|code|errorCode|error|Error)\"\s*:\s*\"(?:[\w.]+#)?([A-Za-z0-9_.]+)\"|"
    r"<Code>([A-Za-z0-9_.]+)</Code>|\b((?:Runtime|States|Sandbox|Lambda)\.[A-Za-z]+)\b"
)
_GRPC = (
    r"(?:StatusCode\.|status ?[=:] ?|code ?[=:] ?|Status(?:Runtime)?Exception: |"
    r"\b\d{1,2} )([A-Z_]{7,20})\b|"
    r"\b(DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED|PERMISSION_DENIED|INVALID_ARGUMENT|"
    r"UNAUTHENTICATED|FAILED_PRECONDITION|ALREADY_EXISTS)\b|"
    r"\brpc error: code = ([A-Z][A-Za-z]+)\b"
)
# The tensor runtimes share gRPC's status codes (XLA and TensorFlow report through absl::Status):
# their RESOURCE_EXHAUSTED is an accelerator's memory, not a service's quota, when its own line
# says so (`XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate`,
# `CUDA_ERROR_OUT_OF_MEMORY`). A retry repeats that allocation; a smaller batch shrinks it.
_TENSOR_MEMORY = r"(?i)(?:\b|_)(out[ _]of[ _]memory)\b|\b(OOM) when allocating\b"
# Kubernetes' reason for a Job or pod past its activeDeadlineSeconds; the same CamelCase word
# is also gRPC's status in Go (`code = DeadlineExceeded`), so only a `reason` names it here.
_K8S_DEADLINE = r"(?i:\breason\b)[\"':= ]{1,4}(DeadlineExceeded)\b"
_OAUTH_ERROR = rf"\b({literal_alternation(list(_OAUTH_ERRORS))})\b"
# pyodbc prints the SQLSTATE first: `('28000', "[28000] [Microsoft]...`.
_ODBC_SQLSTATE = r"\('([0-9A-Z]{5})', [\"']\[[0-9A-Z]{5}\]"


# The AWS SDK for C++ names its error types in UPPER_SNAKE case (`AWS Error ACCESS_DENIED`, as
# Arrow, DuckDB and other native S3 clients print them): the same codes as the services'.
_AWS_SDK_ERROR = r"\bAWS Error ([A-Z][A-Z_]{3,40})\b"


@cache
def _standard_phrases() -> dict[str, str]:
    """Standard messages (orchestrators', shells', libraries', runtimes'), lower-cased."""
    phrases = {
        **_ORCHESTRATOR_PHRASES,
        **_PYTHON_MESSAGES,
        **library_classes.MESSAGES,
        **runtime_codes.MESSAGES,
    }
    return {phrase.lower(): code for phrase, code in phrases.items()}


@cache
def _reason_pattern() -> TextPattern:
    return raw_pattern(rf"\b({literal_alternation(list(_ORCHESTRATOR_REASONS))})\b")


@cache
def _phrase_pattern() -> TextPattern:
    phrases = [*_strerror_table(), *_PG_MESSAGES, *_standard_phrases()]
    return raw_pattern(rf"(?i)\b({literal_alternation(phrases)})\b")


@cache
def _reason_phrase_pattern() -> TextPattern:
    return raw_pattern(rf"\b({literal_alternation(list(_HTTP_REASONS))})\b")


def _finds(pattern: str | TextPattern, text: str) -> list[tuple[str, int]]:
    """Every match's first non-empty group and its position."""
    compiled = raw_pattern(pattern) if isinstance(pattern, str) else pattern
    found = []
    for match in compiled.finditer(text):  # type: ignore[attr-defined]
        value = next((g for g in match.groups() if g), None)
        if value:
            found.append((value, match.start()))
    return found


def _is_prose(qualified: str, text: str, end: int) -> bool:
    """A lone capitalised word (`Timeout was reached`, `Field 'Timeout'`) is prose, not a
    class: a class is CamelCase, module-qualified, or printed as `Name: message`."""
    capitals = sum(c.isupper() for c in qualified)
    return "." not in qualified and capitals <= 1 and not text.startswith(":", end)


def _is_code(text: str, start: int, end: int) -> bool:
    """A bare name in parentheses is a service's error code (botocore's `An error occurred
    (ValidationError)`, Azure's and MongoDB's `(Code) message`): the code tables decide it.
    A module-qualified one is a Python class, as SQLAlchemy wraps a driver's exception:
    `(psycopg2.OperationalError) ...`, `(builtins.TimeoutError) ...`."""
    name = text[start:end]
    return "." not in name and text[start - 1 : start] == "(" and text.startswith(")", end)


def _class_decoded(qualified: str, position: int) -> Decoded | None:
    """A class's family: its qualified name's when the tables give one (a generic class there
    names none), else its bare name's, else what its CamelCase words announce."""
    if qualified in library_classes.QUALIFIED:
        code = library_classes.QUALIFIED[qualified]
        if not code:
            return None
        return Decoded(code, f"exception class {qualified}", SPECIFIC, position, by_class=True)
    name = qualified.rsplit(".", 1)[-1]
    if family := _class_family(name):
        return Decoded(
            family[0], f"exception class {qualified}", family[1], position, by_class=True
        )
    if name not in _GENERIC_CLASSES and (naming := _naming_family(name)):
        return Decoded(naming, f"class name {qualified}", NAMING, position, by_class=True)
    return None


def _class_candidates(text: str) -> list[Decoded]:
    found = []
    for qualified, position in _finds(_CLASS_NAME, text):
        end = position + len(qualified)
        if _is_prose(qualified, text, end) or _is_code(text, position, end):
            continue
        if decoded := _class_decoded(qualified, position):
            found.append(decoded)
    for name, position in _finds(_PG_ERROR_CLASS, text):
        state = _PG_CONDITIONS.get(name)
        sql_family = sqlstate_family(state) if state else None
        if sql_family:
            found.append(
                Decoded(sql_family, f"PostgreSQL condition {name} ({state})", SPECIFIC, position)
            )
    return found


def _errno_candidates(text: str) -> list[Decoded]:
    found = []
    for raw, position in _finds(_ERRNO_NUMBER, text):
        name = _errno_name(int(raw))
        family = _ERRNO_FAMILIES.get(name or "") or _RESOLVER_CODES.get(name or "")
        if family:
            found.append(Decoded(family, f"errno {raw} ({name})", SPECIFIC, position, socket=True))
    for name, position in _finds(_ERRNO_NAME, text):
        family = _ERRNO_FAMILIES.get(name) or _RESOLVER_CODES.get(name)
        if family:
            found.append(Decoded(family, f"errno {name}", SPECIFIC, position, socket=True))
    return found


def _code_candidates(text: str) -> list[Decoded]:
    found = []
    for state, position in _finds(_SQLSTATE, text):
        family = sqlstate_family(state.upper())
        if family:
            found.append(Decoded(family, f"SQLSTATE {state}", SPECIFIC, position))
    for status, position in _finds(_HTTP_STATUS, text):
        family = _HTTP_STATUSES.get(int(status))
        if family:
            found.append(Decoded(family, f"HTTP {status}", SPECIFIC, position))
    for code, position in _finds(_AWS_CODE, text):
        family = _aws_family(code)
        if family:
            found.append(Decoded(family, f"AWS error code {code}", SPECIFIC, position))
    for state, position in _finds(_ODBC_SQLSTATE, text):
        if family := sqlstate_family(state):
            found.append(Decoded(family, f"ODBC SQLSTATE {state}", SPECIFIC, position))
    return found


def _line_at(text: str, position: int) -> str:
    end = text.find("\n", position)
    return text[text.rfind("\n", 0, position) + 1 : end if end >= 0 else len(text)]


def _status_candidates(text: str) -> list[Decoded]:
    """gRPC and OAuth statuses, Kubernetes and container reasons."""
    found = []
    for spelled, position in _finds(_GRPC, text):
        status = _GRPC_BY_GO_NAME.get(spelled, spelled)
        family = _GRPC_STATUSES.get(status)
        evidence = f"gRPC status {status}"
        if status == "RESOURCE_EXHAUSTED" and _finds(_TENSOR_MEMORY, _line_at(text, position)):
            family, evidence = "GPU_OUT_OF_MEMORY", f"{evidence} (out of memory)"
        if family:
            found.append(Decoded(family, evidence, SPECIFIC, position))
    for code, position in _finds(_OAUTH_ERROR, text):
        found.append(Decoded(_OAUTH_ERRORS[code], f"OAuth error {code}", SPECIFIC, position))
    for _, position in _finds(_K8S_DEADLINE, text):
        found.append(
            Decoded("DEADLINE_EXCEEDED", "Kubernetes reason DeadlineExceeded", SPECIFIC, position)
        )
    for reason, position in _finds(_reason_pattern(), text):
        found.append(
            Decoded(_ORCHESTRATOR_REASONS[reason], f"container reason {reason}", SPECIFIC, position)
        )
    return found


def _vendor_code_candidates(text: str) -> list[Decoded]:
    """MySQL's numbered errors, libcurl's codes and the AWS C++ SDK's error names."""
    found = []
    for number, position in _finds(_MYSQL_NUMBER, text):
        if mysql := _MYSQL_ERRORS.get(int(number)):
            evidence = f"MySQL error {number} ({mysql[0]})"
            found.append(Decoded(mysql[1], evidence, SPECIFIC, position))
    for symbol, position in _finds(_MYSQL_SYMBOL, text):
        if family := _MYSQL_SYMBOLS.get(symbol):
            found.append(Decoded(family, f"MySQL error {symbol}", SPECIFIC, position))
    for number, position in _finds(_CURL_NUMBER, text):
        if curl := _CURL_ERRORS.get(int(number)):
            found.append(Decoded(curl[1], f"curl error {number} ({curl[0]})", SPECIFIC, position))
    for symbol, position in _finds(_CURL_SYMBOL, text):
        if family := _CURL_SYMBOLS.get(symbol):
            found.append(Decoded(family, f"curl error {symbol}", SPECIFIC, position))
    for name, position in _finds(_AWS_SDK_ERROR, text):
        camel = "".join(part.capitalize() for part in name.split("_"))
        if family := _aws_family(camel):
            found.append(Decoded(family, f"AWS SDK error {name}", SPECIFIC, position))
    for service in service_codes.find(text):
        strength = NAMING if service.weak else SPECIFIC
        found.append(Decoded(service.code, service.evidence, strength, service.position))
    return found


def _phrase_candidates(text: str) -> list[Decoded]:
    found = []
    strerrors = _strerror_table()
    orchestrator = _standard_phrases()
    for phrase, position in _finds(_phrase_pattern(), text):
        key = phrase.lower()
        socket = False
        if key in _PG_MESSAGES:
            state = _PG_MESSAGES[key]
            family = sqlstate_family(state)
            evidence = f"PostgreSQL message '{phrase}' ({state})"
        elif key in orchestrator:
            family, evidence = orchestrator[key], f"standard message '{phrase}'"
        else:
            family, evidence, socket = strerrors.get(key), f"strerror '{phrase}'", True
        if family:
            found.append(Decoded(family, evidence, PHRASE, position, socket=socket))
    for reason, position in _finds(_reason_phrase_pattern(), text):
        status = _HTTP_REASONS[reason]
        found.append(Decoded(_HTTP_STATUSES[status], f"HTTP {status} {reason}", PHRASE, position))
    for refusal, position in _finds(_LOGIN_REFUSED, text):
        found.append(
            Decoded(_AUTHENTICATION_FAILED, f"login refused '{refusal}'", PHRASE, position)
        )
    return found


def decode(text: str) -> Decoded | None:
    """The strongest standard family named in the text (the last one among equals).

    A refused login (its wording, HTTP 401, SQLSTATE class 28...) outranks a failed connection
    named by a class or a code however strongly: drivers raise the refusal with their
    connection class or SQLSTATE (see `_LOGIN_REFUSED`). A connection the socket itself saw
    fail keeps its ordinary rank (`login failed: [Errno 111] Connection refused`: the login
    failed because the network did).
    Two readings of one token (`spawn python3 ENOENT` read by Node's spawn rule and as an
    errno) tie on strength and place; the vendor's, which matched more of the text, is listed
    first so that `max` keeps it."""
    candidates = [
        *_vendor_code_candidates(text),
        *_class_candidates(text),
        *_errno_candidates(text),
        *_code_candidates(text),
        *_status_candidates(text),
        *_phrase_candidates(text),
    ]
    if any(c.code == _AUTHENTICATION_FAILED for c in candidates):
        candidates = [c for c in candidates if c.code != _CONNECTION_FAILED or c.socket]
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c.strength, c.position))


def emitted_codes() -> set[str]:
    """Every code this layer can answer with (each must be defined)."""
    return {
        *_PYTHON_BASES.values(),
        *_PYTHON_MESSAGES.values(),
        *_BROAD_CLASSES.values(),
        *_SOCKET_CLASSES.values(),
        *_JVM_CLASSES.values(),
        *(code for _, code in _NAMING_RULES),
        *(code for code in _AWS_PREFIXED.values() if code),
        *(code for _, code in _AWS_FAMILIES),
        *_ERRNO_FAMILIES.values(),
        *_RESOLVER_CODES.values(),
        *_SQLSTATE_EXACT.values(),
        *_SQLSTATE_CLASSES.values(),
        *_MYSQL_SYMBOLS.values(),
        *_CURL_SYMBOLS.values(),
        *_HTTP_STATUSES.values(),
        *_GRPC_STATUSES.values(),
        *_OAUTH_ERRORS.values(),
        *_ORCHESTRATOR_REASONS.values(),
        *_ORCHESTRATOR_PHRASES.values(),
        *library_classes.FAMILIES.values(),
        *(code for code in library_classes.QUALIFIED.values() if code),
        *library_classes.MESSAGES.values(),
        *runtime_codes.CLASSES.values(),
        *runtime_codes.MESSAGES.values(),
        *service_codes.emitted_codes(),
    }
