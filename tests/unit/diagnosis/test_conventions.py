"""The rule layers agree with the labelling conventions (tests/data/errors/README.md) and with
what each vendor documents its code to mean: category, first action and transient flag.

Every message here is written for this test from the vendors' documented formats."""

from __future__ import annotations

import pytest

from bunsui_core.diagnosis.classifier import classify
from bunsui_core.diagnosis.vocabulary import Category as C
from bunsui_core.diagnosis.vocabulary import RecoveryAction as A

# (message, category, first action, transient)
CONVENTIONS = [
    # Remote 5xx responses are NETWORK with retry_with_backoff, a gateway timeout included.
    (
        "requests.exceptions.HTTPError: 504 Server Error: Gateway Timeout for url: "
        "https://reports.example.net/api/v2/export",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "google.api_core.exceptions.GatewayTimeout: 504 GET https://storage.googleapis.com/x",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "azure.core.exceptions.HttpResponseError: (OperationTimedOut) Operation could not be "
        "completed within the specified time.",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "elasticsearch.exceptions.TransportError: TransportError(503, "
        "'process_cluster_event_timeout_exception', 'failed to process cluster event "
        "(put-mapping [events/abc]) within 30s')",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        '{"error": "Lambda.ServiceException", "cause": "Status Code: 500; Error Code: '
        'ServiceException"}',
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    ('{"error": "Lambda.EC2ThrottledException"}', C.THROTTLING, A.RETRY_WITH_BACKOFF, True),
    # A client-side deadline on a remote call is NETWORK; the job's own deadline is TIMEOUT.
    (
        "grpc._channel._InactiveRpcError: <_InactiveRpcError of RPC that terminated with:\n"
        '\tstatus = StatusCode.DEADLINE_EXCEEDED\n\tdetails = "Deadline Exceeded">',
        C.NETWORK,
        A.RETRY,
        True,
    ),
    (
        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
        C.NETWORK,
        A.RETRY,
        True,
    ),
    (
        "google.api_core.exceptions.DeadlineExceeded: 504 Deadline Exceeded",
        C.NETWORK,
        A.RETRY,
        True,
    ),
    (
        "Type: Failed  Status: True  Reason: DeadlineExceeded  "
        "Message: Job was active longer than specified deadline",
        C.TIMEOUT,
        A.INCREASE_TIMEOUT,
        False,
    ),
    # A connect timeout is NETWORK waited out with backoff; only a read timeout is `retry`.
    (
        "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='ingest.example.org', "
        "port=443): Max retries exceeded (connect timeout=10)",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    ("OSError: [Errno 110] Connection timed out", C.NETWORK, A.RETRY_WITH_BACKOFF, True),
    ("ORA-12170: TNS:Connect timeout occurred", C.NETWORK, A.RETRY_WITH_BACKOFF, True),
    (
        "pyodbc.OperationalError: ('HYT01', '[HYT01] [Microsoft][ODBC Driver 18 for SQL "
        "Server]Login timeout expired (0) (SQLDriverConnect)')",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "urllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool(host='ingest.example.org', "
        "port=443): Read timed out. (read timeout=60)",
        C.NETWORK,
        A.RETRY,
        True,
    ),
    # Lock-wait timeouts are TIMEOUT with retry_with_backoff: the holder finishes.
    (
        'pymysql.err.OperationalError: (1205, "Lock wait timeout exceeded; try restarting '
        'transaction")',
        C.TIMEOUT,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "Msg 1222, Level 16, State 45, Line 3\nLock request time out period exceeded.",
        C.TIMEOUT,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "psycopg2.errors.LockNotAvailable: canceling statement due to lock timeout",
        C.TIMEOUT,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        'ERROR:  could not obtain lock on row in relation "invoices"',
        C.TIMEOUT,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "ORA-00054: resource busy and acquire with NOWAIT specified or timeout expired",
        C.TIMEOUT,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # Deadlocks stay APPLICATION with retry_with_backoff.
    (
        'pymysql.err.OperationalError: (1213, "Deadlock found when trying to get lock")',
        C.APPLICATION,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # A server's own memory limit for the query: more memory for the job cannot help.
    (
        "psycopg2.errors.OutOfMemory: out of memory\nDETAIL:  Failed on request of size 524288.",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "ERROR 1038 (HY001): Out of sort memory, consider increasing server sort buffer size",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "ORA-04031: unable to allocate 4160 bytes of shared memory",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "Msg 701, Level 17, State 123, Line 1\nThere is insufficient system memory in "
        "resource pool 'default' to run this query.",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "Query 20260130_101112_00042_abcde failed: EXCEEDED_LOCAL_MEMORY_LIMIT: Query exceeded "
        "per-node memory limit of 2GB",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "redis.exceptions.ResponseError: OOM command not allowed when used memory > 'maxmemory'.",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "elasticsearch.ApiError: ApiError(429, 'circuit_breaking_exception', '[parent] Data "
        "too large, data for [<http_request>] would be [1.9gb], which is larger than the limit')",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    # The job's own process out of memory is still increase_memory.
    ("MemoryError: Unable to allocate 3.2 GiB for an array", C.RESOURCE, A.INCREASE_MEMORY, False),
    # AWS's ValidationError is a rejected parameter (CONFIGURATION); a library's is DATA.
    (
        "botocore.exceptions.ClientError: An error occurred (ValidationError) when calling the "
        "UpdateStack operation: No updates are to be performed.",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    # SQLAlchemy wraps a driver's exception as `(module.Class) message`: still a class.
    (
        "sqlalchemy.exc.OperationalError: (builtins.TimeoutError) timed out\n"
        "(Background on this error at: https://sqlalche.me/e/20/e3q8)",
        C.NETWORK,
        A.RETRY,
        True,
    ),
    (
        "sqlalchemy.exc.OperationalError: (requests.exceptions.ConnectTimeout) "
        "HTTPSConnectionPool(host='warehouse.internal', port=443): Max retries exceeded",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for Shipment\n"
        "weight\n  Input should be a valid number",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # An image that cannot be pulled is a missing dependency, as the taxonomy's reasons say.
    (
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to "
        "resolve ref 123456789012.dkr.ecr.eu-west-1.amazonaws.com/loader:v9: not found",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        'Back-off pulling image "loader:v9": ImagePullBackOff',
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    # Credentials, missing or expired, are PERMISSION with fix_permissions.
    (
        "botocore.exceptions.NoCredentialsError: Unable to locate credentials",
        C.PERMISSION,
        A.FIX_PERMISSIONS,
        False,
    ),
]


@pytest.mark.parametrize(("message", "category", "action", "transient"), CONVENTIONS)
def test_rule_layers_follow_the_labelling_conventions(message, category, action, transient):
    """Category, first action and transient flag as the conventions and the vendor say."""
    result = classify(message, use_model=False)
    assert (result.category, result.priors[0].action, result.transient) == (
        category,
        action,
        transient,
    ), (result.error_code, result.evidence)
