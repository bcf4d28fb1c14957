"""Data services' documented error codes, decoded by the taxonomy layer.

Every example is written from the vendor's own reference (Oracle's error messages, SQL
Server's engine errors, the Kafka protocol guide, MongoDB's error codes, Redis's error
prefixes, Elasticsearch exception types, Spark error conditions, Trino's StandardErrorCode,
gRPC status codes, google.api_core exceptions), never from the evaluation corpus.
"""

from __future__ import annotations

import pytest

from bunsui_core.diagnosis import service_codes, taxonomy
from bunsui_core.diagnosis.catalog import definition
from bunsui_core.diagnosis.classifier import classify
from bunsui_core.diagnosis.vocabulary import Category, Layer
from bunsui_core.model.session import FailureKind

C = Category

EXAMPLES = [
    # Oracle ORA-/TNS- and python-oracledb DPI-/DPY-
    ("ORA-01017: invalid username/password; logon denied", C.PERMISSION, "AUTHENTICATION_FAILED"),
    ("cx_Oracle.DatabaseError: ORA-12541: TNS:no listener", C.NETWORK, "CONNECTION_FAILED"),
    ("TNS-12541: TNS:no listener", C.NETWORK, "CONNECTION_FAILED"),
    (
        "oracledb.exceptions.DatabaseError: ORA-00942: table or view does not exist",
        C.DEPENDENCY,
        None,
    ),
    ("ORA-00001: unique constraint (APP.PK_T) violated", C.DATA, "INVALID_DATA"),
    ("ORA-00060: deadlock detected while waiting for resource", C.APPLICATION, None),
    ("ORA-01555: snapshot too old: rollback segment number 9 too small", C.RESOURCE, None),
    ("ORA-01652: unable to extend temp segment by 128 in tablespace TEMP", C.RESOURCE, "DISK_FULL"),
    (
        'ORA-12899: value too large for column "APP"."T"."NAME" (actual: 40, maximum: 30)',
        C.DATA,
        None,
    ),
    ("ORA-01722: invalid number", C.DATA, "INVALID_DATA"),
    ("DPI-1047: Cannot locate a 64-bit Oracle Client library", C.DEPENDENCY, "MISSING_MODULE"),
    # SQL Server numbers, as sqlcmd, pyodbc, SqlClient and pymssql print them, and its texts
    (
        "Msg 1205, Level 13, State 51, Line 1\nTransaction (Process ID 52) was chosen as"
        " the deadlock victim.",
        C.APPLICATION,
        "TRANSACTION_CONFLICT",
    ),
    (
        "pyodbc.InterfaceError: ('28000', \"[28000] [Microsoft][ODBC Driver 17 for SQL"
        " Server][SQL Server]Login failed for user 'etl'. (18456) (SQLDriverConnect)\")",
        C.PERMISSION,
        "AUTHENTICATION_FAILED",
    ),
    (
        "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]The duplicate key value"
        " is (7). (2627) (SQLExecDirectW)",
        C.DATA,
        "INVALID_DATA",
    ),
    (
        "Microsoft.Data.SqlClient.SqlException (0x80131904): Execution Timeout"
        " Expired.\nError Number:-2,State:0,Class:11",
        C.TIMEOUT,
        "DEADLINE_EXCEEDED",
    ),
    (
        'pymssql.exceptions.OperationalError: (4060, b\'Cannot open database "sales"'
        " requested by the login.')",
        C.DEPENDENCY,
        "MISSING_RESOURCE",
    ),
    (
        "com.microsoft.sqlserver.jdbc.SQLServerException: String or binary data would be"
        " truncated.",
        C.DATA,
        None,
    ),
    ("ConnectionError: Login failed for user 'app'.", C.PERMISSION, "AUTHENTICATION_FAILED"),
    (
        "pyodbc.OperationalError: ('HYT00', '[HYT00] [Microsoft][ODBC Driver 17 for SQL"
        " Server]Query timeout expired (0) (SQLExecDirectW)')",
        C.TIMEOUT,
        None,
    ),
    # Kafka protocol names, kafka-python / Java classes, librdkafka
    (
        "KafkaJSProtocolError: This server does not host this topic-partition"
        " (UNKNOWN_TOPIC_OR_PARTITION)",
        C.DEPENDENCY,
        "MISSING_RESOURCE",
    ),
    (
        "kafka.errors.NotLeaderForPartitionError: [Error 6] NotLeaderForPartitionError",
        C.NETWORK,
        "SERVICE_UNAVAILABLE",
    ),
    (
        "org.apache.kafka.common.errors.TopicAuthorizationException: Not authorized to"
        " access topics: [events]",
        C.PERMISSION,
        "PERMISSION_DENIED",
    ),
    (
        "kafka.errors.TopicAuthorizationFailedError: [Error 29] TopicAuthorizationFailedError",
        C.PERMISSION,
        None,
    ),
    (
        "org.apache.kafka.common.errors.SaslAuthenticationException: Authentication"
        " failed: Invalid username or password",
        C.PERMISSION,
        "AUTHENTICATION_FAILED",
    ),
    (
        "org.apache.kafka.common.errors.RecordTooLargeException: The message is 2097152"
        " bytes when serialized",
        C.DATA,
        "INVALID_DATA",
    ),
    (
        'cimpl.KafkaException: KafkaError{code=_MSG_TIMED_OUT,val=-192,str="Local:'
        ' Message timed out"}',
        C.NETWORK,
        "NETWORK_TIMEOUT",
    ),
    (
        'KafkaError{code=TOPIC_AUTHORIZATION_FAILED,val=29,str="Broker: Topic'
        ' authorization failed"}',
        C.PERMISSION,
        None,
    ),
    # MongoDB code names
    (
        "pymongo.errors.OperationFailure: not authorized, full error: {'ok': 0.0,"
        " 'errmsg': 'not authorized on app', 'code': 13, 'codeName': 'Unauthorized'}",
        C.PERMISSION,
        "PERMISSION_DENIED",
    ),
    (
        "com.mongodb.MongoCommandException: Command failed with error 18"
        " (AuthenticationFailed): 'Authentication failed.'",
        C.PERMISSION,
        "AUTHENTICATION_FAILED",
    ),
    ("(NotWritablePrimary) not primary", C.NETWORK, "SERVICE_UNAVAILABLE"),
    (
        "{'code': 50, 'codeName': 'MaxTimeMSExpired', 'errmsg': 'operation exceeded time limit'}",
        C.TIMEOUT,
        "DEADLINE_EXCEEDED",
    ),
    (
        "MongoServerError: E11000 duplicate key error collection: app.users index: email_1",
        C.DATA,
        "INVALID_DATA",
    ),
    # Redis prefixes and redis-py classes
    (
        "redis.exceptions.ResponseError: WRONGTYPE Operation against a key holding the"
        " wrong kind of value",
        C.APPLICATION,
        "CODE_DEFECT",
    ),
    ("(error) NOAUTH Authentication required.", C.PERMISSION, "AUTHENTICATION_FAILED"),
    (
        "ReplyError: WRONGPASS invalid username-password pair or user is disabled.",
        C.PERMISSION,
        None,
    ),
    (
        "NOPERM this user has no permissions to run the 'flushall' command",
        C.PERMISSION,
        "PERMISSION_DENIED",
    ),
    ("ReplyError: OOM command not allowed when used memory > 'maxmemory'.", C.RESOURCE, None),
    ("(error) LOADING Redis is loading the dataset in memory", C.NETWORK, "SERVICE_UNAVAILABLE"),
    ("(error) MOVED 3999 127.0.0.1:6381", C.CONFIGURATION, "INVALID_REQUEST"),
    ("CLUSTERDOWN The cluster is down", C.NETWORK, "SERVICE_UNAVAILABLE"),
    # Elasticsearch exception types
    (
        "NotFoundError(404, 'index_not_found_exception', 'no such index [logs]')",
        C.DEPENDENCY,
        "MISSING_RESOURCE",
    ),
    (
        "BadRequestError(400, 'mapper_parsing_exception', 'failed to parse field [ts] of"
        " type [date]')",
        C.DATA,
        "INVALID_DATA",
    ),
    (
        "TransportError(429, 'circuit_breaking_exception', '[parent] Data too large')",
        C.RESOURCE,
        None,
    ),
    (
        '{"type":"version_conflict_engine_exception","reason":"[1]: version conflict"}',
        C.APPLICATION,
        None,
    ),
    # Hadoop/HDFS, Hive, Spark error classes, Trino names
    (
        "org.apache.hadoop.security.AccessControlException: Permission denied: user=etl,"
        " access=WRITE",
        C.PERMISSION,
        "PERMISSION_DENIED",
    ),
    (
        "org.apache.hadoop.hdfs.server.namenode.SafeModeException: Cannot create file."
        " Name node is in safe mode.",
        C.NETWORK,
        None,
    ),
    (
        "org.apache.hadoop.hdfs.protocol.DSQuotaExceededException: The DiskSpace quota"
        " of /data is exceeded",
        C.RESOURCE,
        "DISK_FULL",
    ),
    (
        "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view `db`.`t` cannot be found.",
        C.DEPENDENCY,
        "MISSING_RESOURCE",
    ),
    ("[PATH_NOT_FOUND] Path does not exist: s3://bucket/in.parquet.", C.DEPENDENCY, "MISSING_FILE"),
    (
        "[DIVIDE_BY_ZERO] Division by zero. Use `try_divide` to tolerate divisor being 0.",
        C.DATA,
        None,
    ),
    ("TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.t' does not exist", C.DEPENDENCY, None),
    (
        "TrinoQueryError(type=INSUFFICIENT_RESOURCES, name=EXCEEDED_LOCAL_MEMORY_LIMIT,"
        ' message="x")',
        C.RESOURCE,
        None,
    ),
    ("HIVE_BAD_DATA: Error parsing field value '2024-13-01' for field 3", C.DATA, None),
    # ClickHouse codes and names; Snowflake login failures behind a connection SQLSTATE
    (
        "Code: 60. DB::Exception: Table default.events doesn't exist. (UNKNOWN_TABLE)",
        C.DEPENDENCY,
        "MISSING_RESOURCE",
    ),
    (
        "clickhouse_driver.errors.ServerException: Code: 241.\n"
        "DB::Exception: Memory limit (for query) exceeded: would use 9.31 GiB",
        C.RESOURCE,
        "SERVER_MEMORY_LIMIT",
    ),
    (
        "250001 (08001): Failed to connect to DB: acct.snowflakecomputing.com:443. "
        "Incorrect username or password was specified.",
        C.PERMISSION,
        "AUTHENTICATION_FAILED",
    ),
    (
        "Snowflake exception: JWT token is invalid. [0ce9eb56], sqlState:08001, "
        "vendorCode:390,144, queryId:",
        C.PERMISSION,
        "AUTHENTICATION_FAILED",
    ),
    # Delta Lake's concurrency conflicts and Databricks conditions
    (
        "io.delta.exceptions.ConcurrentAppendException: Files were added to the root of the "
        "table by a concurrent update. Please try the operation again.",
        C.APPLICATION,
        "TRANSACTION_CONFLICT",
    ),
    (
        "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have USE CATALOG",
        C.PERMISSION,
        None,
    ),
    # Azure Resource Manager / Storage codes and Entra ID sign-in codes
    (
        "(AuthorizationFailed) The client 'x' does not have authorization to perform action",
        C.PERMISSION,
        "PERMISSION_DENIED",
    ),
    (
        "Code: ResourceGroupNotFound\nMessage: Resource group 'rg' could not be found.",
        C.DEPENDENCY,
        None,
    ),
    ("ErrorCode:ServerBusy", C.THROTTLING, "RATE_LIMITED"),
    (
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is correct.",
        C.PERMISSION,
        "AUTHENTICATION_FAILED",
    ),
    # gRPC status codes in each language's spelling, google.api_core classes
    (
        'status = StatusCode.FAILED_PRECONDITION\n\tdetails = "index not ready"',
        C.CONFIGURATION,
        None,
    ),
    ("rpc error: code = Unavailable desc = connection error", C.NETWORK, "SERVICE_UNAVAILABLE"),
    ("rpc error: code = PermissionDenied desc = caller lacks permission", C.PERMISSION, None),
    ("Error: 14 UNAVAILABLE: No connection established", C.NETWORK, "SERVICE_UNAVAILABLE"),
    (
        "io.grpc.StatusRuntimeException: UNAUTHENTICATED: invalid authentication credentials",
        C.PERMISSION,
        None,
    ),
    (
        "google.api_core.exceptions.AlreadyExists: 409 Already Exists: Dataset proj:ds",
        C.CONFIGURATION,
        None,
    ),
    (
        "google.api_core.exceptions.RetryError: Deadline of 120.0s exceeded while"
        " calling target function",
        C.NETWORK,
        None,
    ),
]


@pytest.mark.parametrize(("message", "category", "code"), EXAMPLES)
def test_service_code_is_decoded(message, category, code):
    """A documented code gets the family its reference describes, from the taxonomy layer."""
    result = classify(message, use_model=False)
    assert result.category is category, (result.error_code, result.evidence)
    assert result.layer is Layer.TAXONOMY, result.evidence
    if code is not None:
        assert result.error_code == code


@pytest.mark.parametrize(
    "message",
    [
        "ORA-00942: table or view does not exist",
        "kafka.errors.UnknownTopicOrPartitionError: [Error 3] UnknownTopicOrPartitionError",
        "KafkaError{code=TOPIC_AUTHORIZATION_FAILED,val=29}",
        "[PATH_NOT_FOUND] Path does not exist: hdfs:///in",
        "org.apache.hadoop.security.AccessControlException: Permission denied",
        "{'codeName': 'Unauthorized'}",
        "NOPERM this user has no permissions",
        "DPI-1047: Cannot locate a 64-bit Oracle Client library",
        "250001 (08001): Failed to connect to DB. Incorrect username or password was specified.",
        "Code: 81. DB::Exception: Database analytics doesn't exist. (UNKNOWN_DATABASE)",
    ],
)
def test_missing_thing_or_refused_grant_is_never_transient(message):
    """Kafka calls UNKNOWN_TOPIC_OR_PARTITION retriable; a missing topic, file, library or
    grant still does not fix itself on a retry, whatever the engine observed."""
    for kind in (None, FailureKind.EXIT_NONZERO):
        result = classify(message, kind=kind)
        assert result.category in {Category.DEPENDENCY, Category.PERMISSION}
        assert not result.transient


@pytest.mark.parametrize(
    "prose",
    [
        "The job is LOADING data into the warehouse",  # a Redis prefix as an ordinary word
        "BUSY week; MOVED the table to schema b",
        "OOM killer was not involved",  # Redis OOM only with its reply text
        "ORA-9999 and XORA-00942Z are not Oracle codes",
        "error in my_custom_exception handler",  # an _exception name no reference defines
        "[SOME_NEW_CONDITION] not in the Spark reference",
        "unknowntopicorpartition in lower case",
    ],
)
def test_words_that_only_look_like_codes_decode_nothing(prose):
    """Codes match with their own spelling and boundaries, and only when the reference
    defines them: prose, other cases and unknown names are left to the other layers."""
    assert taxonomy.decode(prose) is None


def test_an_undefined_number_decodes_nothing():
    """Only numbers the references define count."""
    assert taxonomy.decode("ORA-99999: whatever") is None
    assert taxonomy.decode("Msg 77777, Level 16, State 1") is None


def test_freetds_wrapper_yields_to_the_server_number():
    """pymssql prints the server's number first and FreeTDS's connection wrappers after it:
    the refused login is what happened, not a connection failure."""
    message = (
        "(18456, b\"Login failed for user 'sa'.DB-Lib error message 20018, severity 14:\\n"
        'DB-Lib error message 20002, severity 9:\\nAdaptive Server connection failed")'
    )
    assert classify(message, use_model=False).category is Category.PERMISSION


def test_every_service_code_family_is_defined():
    """No table maps a code to a family without a category, flags and actions."""
    assert {c for c in service_codes.emitted_codes() if definition(c) is None} == set()


@pytest.mark.parametrize("name", sorted(service_codes.CLASSES))
def test_every_client_class_is_read_when_raised(name):
    """Each documented client class is found as a raised exception (`pkg.Name: message`) and
    answers its family: no table entry is out of the class pattern's reach."""
    decoded = taxonomy.decode(f"org.example.{name}: boom")
    assert decoded is not None
    assert decoded.code == service_codes.CLASSES[name]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (
            "operation error S3: PutObject, https response error StatusCode: 403, "
            "RequestID: X, api error AccessDenied: Access Denied",
            "ACCESS_DENIED",
        ),
        ("operation error DynamoDB: PutItem, api error ThrottlingException: x", "AWS_THROTTLING"),
        ("operation error S3: GetObject, api error NoSuchKey: y", "S3_OBJECT_MISSING"),
    ],
)
def test_aws_sdk_for_go_v2_error_code_is_read(message, code):
    """Terraform's AWS provider and other Go tools print `api error Code: message`: the same
    AWS error codes, decoded into their families (the catalog may still answer first)."""
    decoded = taxonomy.decode(message)
    assert decoded is not None
    assert decoded.code == code
