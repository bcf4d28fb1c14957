"""The error codes of common data services, as their own references document them.

Oracle (ORA-/TNS-, python-oracledb DPY-/DPI-), SQL Server error numbers, the Kafka protocol
error names (and librdkafka's), MongoDB's error code names, Redis error prefixes,
Elasticsearch exception types, Spark SQL error classes, Trino's standard error names,
ClickHouse's error codes, DuckDB's error types, SQLite's result codes and messages
(sqlite_codes.py), Snowflake's login failures and Azure's error codes, plus the exception
classes their clients raise. Each table maps a documented code to the family (taxonomy.yaml)
that the reference's own description of the code places it in; a code whose meaning depends
on context (a generic "internal error") is left out, so its message decides.
Every pattern is case-sensitive where the vendor's spelling is, and bounded on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from bunsui_core.diagnosis import runtime_codes, sqlite_codes
from bunsui_core.diagnosis.patterns import TextPattern, literal_alternation, raw_pattern

# ---- Oracle: Database Error Messages (docs.oracle.com/en/database/oracle/oracle-database/19/
# errmg), and python-oracledb's own DPY-/DPI- errors (python-oracledb.readthedocs.io, "Error
# Messages"). TNS-nnnnn is the listener's spelling of the same ORA-nnnnn number.
ORACLE: dict[str, str] = {
    "ORA-00001": "INVALID_DATA",  # unique constraint violated
    "ORA-00018": "CONNECTIONS_EXHAUSTED",  # maximum number of sessions exceeded
    "ORA-00020": "CONNECTIONS_EXHAUSTED",  # maximum number of processes exceeded
    "ORA-00054": "LOCK_WAIT_TIMEOUT",  # resource busy and acquire with NOWAIT/timeout expired
    "ORA-00060": "TRANSACTION_CONFLICT",  # deadlock detected while waiting for resource
    "ORA-00257": "DISK_FULL",  # archiver error: archive destination full
    "ORA-00900": "CODE_DEFECT",  # invalid SQL statement
    "ORA-00904": "MISSING_RESOURCE",  # invalid identifier (no such column)
    "ORA-00907": "CODE_DEFECT",  # missing right parenthesis
    "ORA-00911": "CODE_DEFECT",  # invalid character
    "ORA-00933": "CODE_DEFECT",  # SQL command not properly ended
    "ORA-00936": "CODE_DEFECT",  # missing expression
    "ORA-00942": "MISSING_RESOURCE",  # table or view does not exist
    "ORA-00955": "CODE_DEFECT",  # name is already used by an existing object
    "ORA-01013": "DEADLINE_EXCEEDED",  # user requested cancel (call timeout)
    "ORA-01017": "AUTHENTICATION_FAILED",  # invalid username/password; logon denied
    "ORA-01031": "PERMISSION_DENIED",  # insufficient privileges
    "ORA-01034": "SERVICE_UNAVAILABLE",  # ORACLE not available
    "ORA-01089": "SERVICE_UNAVAILABLE",  # immediate shutdown in progress
    "ORA-01400": "INVALID_DATA",  # cannot insert NULL
    "ORA-01403": "MISSING_RESOURCE",  # no data found
    "ORA-01438": "INVALID_DATA",  # value larger than specified precision
    "ORA-01476": "INVALID_DATA",  # divisor is equal to zero (SQLSTATE 22012)
    "ORA-01536": "DISK_FULL",  # space quota exceeded for tablespace
    "ORA-01555": "RESOURCE_EXHAUSTED",  # snapshot too old: undo space
    "ORA-01652": "DISK_FULL",  # unable to extend temp segment
    "ORA-01653": "DISK_FULL",  # unable to extend table
    "ORA-01654": "DISK_FULL",  # unable to extend index
    "ORA-01688": "DISK_FULL",  # unable to extend table partition
    "ORA-01722": "INVALID_DATA",  # invalid number
    "ORA-01843": "INVALID_DATA",  # not a valid month
    "ORA-01858": "INVALID_DATA",  # a non-numeric character was found where a numeric was expected
    "ORA-01861": "INVALID_DATA",  # literal does not match format string
    "ORA-02291": "INVALID_DATA",  # integrity constraint violated - parent key not found
    "ORA-02292": "INVALID_DATA",  # integrity constraint violated - child record found
    "ORA-03113": "CONNECTION_FAILED",  # end-of-file on communication channel
    "ORA-03114": "CONNECTION_FAILED",  # not connected to ORACLE
    "ORA-03135": "CONNECTION_FAILED",  # connection lost contact
    "ORA-04030": "SERVER_MEMORY_LIMIT",  # out of process memory (the server's PGA)
    "ORA-04031": "SERVER_MEMORY_LIMIT",  # unable to allocate shared memory (SGA pool)
    "ORA-06550": "CODE_DEFECT",  # PL/SQL compilation error
    "ORA-12154": "INVALID_REQUEST",  # could not resolve the connect identifier
    "ORA-12170": "CONNECT_TIMEOUT",  # TNS:Connect timeout occurred
    "ORA-12514": "INVALID_REQUEST",  # listener does not currently know of service
    "ORA-12519": "CONNECTIONS_EXHAUSTED",  # no appropriate service handler found
    "ORA-12520": "CONNECTIONS_EXHAUSTED",  # no available handler for the server type
    "ORA-12541": "CONNECTION_FAILED",  # TNS:no listener
    "ORA-12543": "CONNECTION_FAILED",  # destination host unreachable
    "ORA-12545": "NAME_RESOLUTION_FAILED",  # target host or object does not exist
    "ORA-12560": "CONNECTION_FAILED",  # TNS:protocol adapter error
    "ORA-12899": "INVALID_DATA",  # value too large for column
    "ORA-28000": "AUTHENTICATION_FAILED",  # the account is locked
    "ORA-28001": "AUTHENTICATION_FAILED",  # the password has expired
    "DPI-1047": "MISSING_MODULE",  # cannot locate an Oracle Client library
    "DPY-3010": "INVALID_REQUEST",  # server version not supported in thin mode
    "DPY-4011": "CONNECTION_FAILED",  # the database or network closed the connection
    "DPY-4027": "INVALID_REQUEST",  # no configuration directory for tnsnames.ora
    "DPY-6005": "CONNECTION_FAILED",  # cannot connect to database
}

# ---- SQL Server: Database engine events and errors (learn.microsoft.com/sql/relational-
# databases/errors-events/database-engine-events-and-errors) and Azure SQL's transient errors
# (learn.microsoft.com/azure/azure-sql/database/troubleshoot-common-errors-issues).
SQL_SERVER: dict[int, str] = {
    -2: "DEADLINE_EXCEEDED",  # SqlClient: Execution Timeout Expired
    102: "CODE_DEFECT",  # incorrect syntax near
    156: "CODE_DEFECT",  # incorrect syntax near the keyword
    207: "MISSING_RESOURCE",  # invalid column name
    208: "MISSING_RESOURCE",  # invalid object name
    229: "PERMISSION_DENIED",  # permission was denied on the object
    230: "PERMISSION_DENIED",  # permission was denied on the column
    241: "INVALID_DATA",  # conversion failed when converting date/time
    245: "INVALID_DATA",  # conversion failed when converting the value
    262: "PERMISSION_DENIED",  # permission denied in database
    515: "INVALID_DATA",  # cannot insert the value NULL
    547: "INVALID_DATA",  # statement conflicted with a constraint
    701: "SERVER_MEMORY_LIMIT",  # insufficient system memory in resource pool
    1105: "DISK_FULL",  # could not allocate space: filegroup is full
    1205: "TRANSACTION_CONFLICT",  # chosen as the deadlock victim
    1222: "LOCK_WAIT_TIMEOUT",  # lock request time out period exceeded
    2601: "INVALID_DATA",  # cannot insert duplicate key row (unique index)
    2627: "INVALID_DATA",  # violation of PRIMARY KEY / UNIQUE constraint
    2628: "INVALID_DATA",  # string or binary data would be truncated in column
    2812: "MISSING_RESOURCE",  # could not find stored procedure
    3960: "TRANSACTION_CONFLICT",  # snapshot isolation update conflict
    4060: "MISSING_RESOURCE",  # cannot open database requested by the login
    8114: "INVALID_DATA",  # error converting data type
    8115: "INVALID_DATA",  # arithmetic overflow
    8134: "INVALID_DATA",  # divide by zero error encountered
    8152: "INVALID_DATA",  # string or binary data would be truncated
    9002: "DISK_FULL",  # the transaction log for database is full
    10053: "CONNECTION_FAILED",  # connection aborted by the host
    10054: "CONNECTION_FAILED",  # connection reset by the remote host
    10060: "CONNECT_TIMEOUT",  # connection attempt timed out
    10061: "CONNECTION_FAILED",  # target machine actively refused it
    10928: "RATE_LIMITED",  # Azure SQL: resource limit reached
    10929: "RATE_LIMITED",  # Azure SQL: minimum guarantee not met
    18456: "AUTHENTICATION_FAILED",  # login failed for user
    40197: "SERVICE_UNAVAILABLE",  # Azure SQL: service error processing the request
    40501: "RATE_LIMITED",  # Azure SQL: the service is currently busy
    40613: "SERVICE_UNAVAILABLE",  # Azure SQL: database not currently available
    49918: "RATE_LIMITED",  # Azure SQL: not enough resources to process the request
}
# The same errors' message texts, which JDBC (SQLServerException) and Node's tedious print
# without the number: each names exactly one numbered error.
SQL_SERVER_MESSAGES: dict[str, int] = {
    "Login failed for user": 18456,
    "was deadlocked on lock": 1205,
    "Violation of PRIMARY KEY constraint": 2627,
    "Violation of UNIQUE KEY constraint": 2627,
    "Cannot insert duplicate key row": 2601,
    "String or binary data would be truncated": 8152,
    "Invalid object name": 208,
    "Invalid column name": 207,
    "Cannot open database": 4060,
    "Conversion failed when converting": 245,
    "Arithmetic overflow error": 8115,
    "Divide by zero error encountered": 8134,
    "Cannot insert the value NULL into column": 515,
    "Could not allocate space for object": 1105,
    "Execution Timeout Expired": -2,
    "Lock request time out period exceeded": 1222,
}
# FreeTDS DB-Library messages (pymssql); weaker than the server's own number printed beside them.
FREETDS: dict[int, str] = {
    20002: "CONNECTION_FAILED",  # Adaptive Server connection failed
    20003: "NETWORK_TIMEOUT",  # Adaptive Server connection timed out
    20009: "CONNECTION_FAILED",  # unable to connect: server unavailable or does not exist
}

# ---- Kafka: the protocol guide's error table (kafka.apache.org/protocol#protocol_error_codes),
# by name; clients print the name (KafkaJS, Sarama), its CamelCase (kafka-python adds `Error`).
# A retriable flag there does not make a missing topic or a refused grant transient here.
KAFKA: dict[str, str] = {
    "OFFSET_OUT_OF_RANGE": "INVALID_REQUEST",
    "CORRUPT_MESSAGE": "INVALID_DATA",
    "UNKNOWN_TOPIC_OR_PARTITION": "MISSING_RESOURCE",
    "LEADER_NOT_AVAILABLE": "SERVICE_UNAVAILABLE",
    "NOT_LEADER_OR_FOLLOWER": "SERVICE_UNAVAILABLE",
    "NOT_LEADER_FOR_PARTITION": "SERVICE_UNAVAILABLE",
    "REQUEST_TIMED_OUT": "NETWORK_TIMEOUT",
    "BROKER_NOT_AVAILABLE": "SERVICE_UNAVAILABLE",
    "REPLICA_NOT_AVAILABLE": "SERVICE_UNAVAILABLE",
    "MESSAGE_TOO_LARGE": "INVALID_DATA",
    "NETWORK_EXCEPTION": "CONNECTION_FAILED",
    "COORDINATOR_LOAD_IN_PROGRESS": "SERVICE_UNAVAILABLE",
    "COORDINATOR_NOT_AVAILABLE": "SERVICE_UNAVAILABLE",
    "NOT_COORDINATOR": "SERVICE_UNAVAILABLE",
    "INVALID_TOPIC_EXCEPTION": "INVALID_REQUEST",
    "RECORD_LIST_TOO_LARGE": "INVALID_DATA",
    "NOT_ENOUGH_REPLICAS": "SERVICE_UNAVAILABLE",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND": "SERVICE_UNAVAILABLE",
    "ILLEGAL_GENERATION": "TRANSACTION_CONFLICT",
    "UNKNOWN_MEMBER_ID": "TRANSACTION_CONFLICT",
    "INVALID_SESSION_TIMEOUT": "INVALID_REQUEST",
    "REBALANCE_IN_PROGRESS": "TRANSACTION_CONFLICT",
    "TOPIC_AUTHORIZATION_FAILED": "PERMISSION_DENIED",
    "GROUP_AUTHORIZATION_FAILED": "PERMISSION_DENIED",
    "CLUSTER_AUTHORIZATION_FAILED": "PERMISSION_DENIED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": "PERMISSION_DENIED",
    "INVALID_TIMESTAMP": "INVALID_DATA",
    "UNSUPPORTED_SASL_MECHANISM": "INVALID_REQUEST",
    "ILLEGAL_SASL_STATE": "INVALID_REQUEST",
    "UNSUPPORTED_VERSION": "INVALID_REQUEST",
    "TOPIC_ALREADY_EXISTS": "INVALID_REQUEST",
    "INVALID_PARTITIONS": "INVALID_REQUEST",
    "INVALID_REPLICATION_FACTOR": "INVALID_REQUEST",
    "INVALID_CONFIG": "INVALID_REQUEST",
    "POLICY_VIOLATION": "INVALID_REQUEST",
    "KAFKA_STORAGE_ERROR": "SERVICE_UNAVAILABLE",
    "SASL_AUTHENTICATION_FAILED": "AUTHENTICATION_FAILED",
    "DELEGATION_TOKEN_EXPIRED": "AUTHENTICATION_FAILED",
    "GROUP_MAX_SIZE_REACHED": "RESOURCE_EXHAUSTED",
    "INVALID_RECORD": "INVALID_DATA",
    "THROTTLING_QUOTA_EXCEEDED": "RATE_LIMITED",
    "NOT_CONTROLLER": "SERVICE_UNAVAILABLE",
    "FENCED_LEADER_EPOCH": "SERVICE_UNAVAILABLE",  # metadata is stale; refreshed on retry
    "OFFSET_NOT_AVAILABLE": "SERVICE_UNAVAILABLE",
    "CONCURRENT_TRANSACTIONS": "TRANSACTION_CONFLICT",
    "UNSTABLE_OFFSET_COMMIT": "TRANSACTION_CONFLICT",
    "GROUP_ID_NOT_FOUND": "MISSING_RESOURCE",
    "UNKNOWN_TOPIC_ID": "MISSING_RESOURCE",
    "RESOURCE_NOT_FOUND": "MISSING_RESOURCE",
    "OFFSET_METADATA_TOO_LARGE": "INVALID_DATA",
    "INVALID_TXN_STATE": "CODE_DEFECT",  # a transactional call out of order
    "INVALID_REQUIRED_ACKS": "INVALID_REQUEST",
    "INVALID_TRANSACTION_TIMEOUT": "INVALID_REQUEST",
    "INVALID_GROUP_ID": "INVALID_REQUEST",
    "FENCED_INSTANCE_ID": "INVALID_REQUEST",
    "UNSUPPORTED_COMPRESSION_TYPE": "INVALID_REQUEST",
    "TOPIC_DELETION_DISABLED": "INVALID_REQUEST",
    "UNACCEPTABLE_CREDENTIAL": "AUTHENTICATION_FAILED",
}
# librdkafka's rd_kafka_resp_err_t names (rdkafka.h): local errors start with `_`, broker
# errors are the protocol's, some abbreviated; its descriptions print as `Local: ...`/`Broker: ...`.
LIBRDKAFKA: dict[str, str] = {
    "_TRANSPORT": "CONNECTION_FAILED",
    "_ALL_BROKERS_DOWN": "CONNECTION_FAILED",
    "_MSG_TIMED_OUT": "NETWORK_TIMEOUT",
    "_TIMED_OUT": "NETWORK_TIMEOUT",
    "_AUTHENTICATION": "AUTHENTICATION_FAILED",
    "_UNKNOWN_TOPIC": "MISSING_RESOURCE",
    "_UNKNOWN_PARTITION": "MISSING_RESOURCE",
    "_RESOLVE": "NAME_RESOLUTION_FAILED",
    "UNKNOWN_TOPIC_OR_PART": "MISSING_RESOURCE",
    "MSG_SIZE_TOO_LARGE": "INVALID_DATA",
    "Local: Broker transport failure": "CONNECTION_FAILED",
    "Local: All broker connections are down": "CONNECTION_FAILED",
    "Local: Message timed out": "NETWORK_TIMEOUT",
    "Local: Timed out": "NETWORK_TIMEOUT",
    "Local: Authentication failure": "AUTHENTICATION_FAILED",
    "Local: Unknown topic": "MISSING_RESOURCE",
    "Local: Unknown partition": "MISSING_RESOURCE",
    "Local: Host resolution failure": "NAME_RESOLUTION_FAILED",
    "Broker: Unknown topic or partition": "MISSING_RESOURCE",
    "Broker: Topic authorization failed": "PERMISSION_DENIED",
    "Broker: Group authorization failed": "PERMISSION_DENIED",
    "Broker: Message size too large": "INVALID_DATA",
    "Broker: Not leader for partition": "SERVICE_UNAVAILABLE",
    "Broker: Leader not available": "SERVICE_UNAVAILABLE",
    "Broker: Request timed out": "NETWORK_TIMEOUT",
    "Broker: SASL Authentication failed": "AUTHENTICATION_FAILED",
}

# ---- MongoDB: the server's error codes (mongodb.com/docs/manual/reference/error-codes,
# src/mongo/base/error_codes.yml), by code name: `'codeName': 'Unauthorized'` (pymongo),
# `Command failed with error 13 (Unauthorized)` (Java), `(AuthenticationFailed) ...` (Go).
MONGODB: dict[str, str] = {
    "BadValue": "INVALID_REQUEST",
    "HostUnreachable": "CONNECTION_FAILED",
    "HostNotFound": "NAME_RESOLUTION_FAILED",
    "FailedToParse": "INVALID_REQUEST",
    "UserNotFound": "AUTHENTICATION_FAILED",
    "Unauthorized": "PERMISSION_DENIED",
    "TypeMismatch": "INVALID_DATA",
    "AuthenticationFailed": "AUTHENTICATION_FAILED",
    "IllegalOperation": "INVALID_REQUEST",
    "LockTimeout": "LOCK_WAIT_TIMEOUT",
    "NamespaceNotFound": "MISSING_RESOURCE",
    "IndexNotFound": "MISSING_RESOURCE",
    "MaxTimeMSExpired": "DEADLINE_EXCEEDED",
    "NetworkTimeout": "NETWORK_TIMEOUT",
    "ShutdownInProgress": "SERVICE_UNAVAILABLE",
    "WriteConflict": "TRANSACTION_CONFLICT",
    "DocumentValidationFailure": "INVALID_DATA",
    "FailedToSatisfyReadPreference": "SERVICE_UNAVAILABLE",
    "ExceededMemoryLimit": "SERVER_MEMORY_LIMIT",
    "PrimarySteppedDown": "SERVICE_UNAVAILABLE",
    "NetworkInterfaceExceededTimeLimit": "NETWORK_TIMEOUT",
    "NoSuchTransaction": "TRANSACTION_CONFLICT",
    "ExceededTimeLimit": "DEADLINE_EXCEEDED",
    "QueryExceededMemoryLimitNoDiskUseAllowed": "SERVER_MEMORY_LIMIT",
    "NotWritablePrimary": "SERVICE_UNAVAILABLE",
    "NotMaster": "SERVICE_UNAVAILABLE",
    "BSONObjectTooLarge": "INVALID_DATA",
    "DuplicateKey": "INVALID_DATA",
    "InterruptedAtShutdown": "SERVICE_UNAVAILABLE",
    "InterruptedDueToReplStateChange": "SERVICE_UNAVAILABLE",
    "NotPrimaryNoSecondaryOk": "SERVICE_UNAVAILABLE",
    "IndexOptionsConflict": "INVALID_REQUEST",
    "IndexKeySpecsConflict": "INVALID_REQUEST",
    "TransactionExceededLifetimeLimitSeconds": "DEADLINE_EXCEEDED",
    "InvalidBSON": "INVALID_DATA",  # 22
    "ConversionFailure": "INVALID_DATA",  # 241
    "ConflictingUpdateOperators": "CODE_DEFECT",  # 40
    "ImmutableField": "CODE_DEFECT",  # 66: an update to _id or a shard key
    "NamespaceExists": "INVALID_REQUEST",  # 48
    "CommandNotFound": "INVALID_REQUEST",  # 59
    "CannotCreateIndex": "INVALID_REQUEST",  # 67
    "IndexAlreadyExists": "INVALID_REQUEST",  # 68
    "InvalidOptions": "INVALID_REQUEST",  # 72
    "InvalidNamespace": "INVALID_REQUEST",  # 73
    "UnsatisfiableWriteConcern": "INVALID_REQUEST",  # 100
    "SSLHandshakeFailed": "INVALID_REQUEST",  # 141: the TLS settings or certificates
    "WriteConcernTimeout": "SERVICE_UNAVAILABLE",  # 64: replicas did not acknowledge in time
    "ReadConcernMajorityNotAvailableYet": "SERVICE_UNAVAILABLE",  # 134, retriable
    "DNSHostNotFound": "NAME_RESOLUTION_FAILED",  # 230
    "SnapshotTooOld": "RESOURCE_EXHAUSTED",  # 239: the snapshot's history is gone, as ORA-01555
}

# ---- Redis: error prefixes (redis.io/docs/latest/develop/reference/errors). Unique words
# match alone; prefixes that are also ordinary capitalised words only with the text the
# server sends after them.
REDIS: dict[str, str] = {
    "WRONGTYPE": "CODE_DEFECT",
    "NOAUTH": "AUTHENTICATION_FAILED",
    "WRONGPASS": "AUTHENTICATION_FAILED",
    "NOPERM": "PERMISSION_DENIED",
    "CLUSTERDOWN": "SERVICE_UNAVAILABLE",
    "MASTERDOWN": "SERVICE_UNAVAILABLE",
    "TRYAGAIN": "SERVICE_UNAVAILABLE",
    "CROSSSLOT": "CODE_DEFECT",
    "OOM command not allowed": "SERVER_MEMORY_LIMIT",  # the server's maxmemory
    "READONLY You can't write": "SERVICE_UNAVAILABLE",
    "LOADING Redis is loading": "SERVICE_UNAVAILABLE",
    "BUSY Redis is busy": "SERVICE_UNAVAILABLE",
    "MISCONF": "STORAGE_IO_ERROR",  # the server cannot persist its snapshot to disk
    "NOREPLICAS": "SERVICE_UNAVAILABLE",  # fewer good replicas than min-replicas-to-write
    "EXECABORT": "CODE_DEFECT",  # MULTI discarded: a queued command was wrong
    "NOSCRIPT": "CODE_DEFECT",  # EVALSHA of a script the server does not hold
    "NOGROUP": "MISSING_RESOURCE",  # no such stream consumer group
    "BUSYGROUP": "INVALID_REQUEST",  # the consumer group already exists
    "ERR max number of clients reached": "CONNECTIONS_EXHAUSTED",
}
_REDIS_REDIRECT = r"\b(MOVED|ASK) \d{1,5} [\w.-]+:\d{1,5}\b"  # a cluster redirection
_REDIS_REDIRECT_FAMILY = "INVALID_REQUEST"  # the client is not cluster-aware

# ---- Elasticsearch: exception `type` values (ElasticsearchException.getExceptionName, the
# snake_case of the server class), as the REST API and every client print them.
ELASTICSEARCH: dict[str, str] = {
    "index_not_found_exception": "MISSING_RESOURCE",
    "resource_not_found_exception": "MISSING_RESOURCE",
    "mapper_parsing_exception": "INVALID_DATA",
    "document_parsing_exception": "INVALID_DATA",
    "strict_dynamic_mapping_exception": "INVALID_DATA",
    "illegal_argument_exception": "INVALID_REQUEST",
    "action_request_validation_exception": "INVALID_REQUEST",
    "invalid_index_name_exception": "INVALID_REQUEST",
    "resource_already_exists_exception": "INVALID_REQUEST",
    "parsing_exception": "CODE_DEFECT",
    "x_content_parse_exception": "CODE_DEFECT",
    "query_shard_exception": "CODE_DEFECT",
    "script_exception": "CODE_DEFECT",
    "circuit_breaking_exception": "SERVER_MEMORY_LIMIT",
    "too_many_buckets_exception": "RESOURCE_EXHAUSTED",
    "es_rejected_execution_exception": "RATE_LIMITED",
    "cluster_block_exception": "DISK_FULL",  # flood-stage watermark: read-only-allow-delete
    "version_conflict_engine_exception": "TRANSACTION_CONFLICT",
    "security_exception": "PERMISSION_DENIED",
    "no_shard_available_action_exception": "SERVICE_UNAVAILABLE",
    "unavailable_shards_exception": "SERVICE_UNAVAILABLE",
    "master_not_discovered_exception": "SERVICE_UNAVAILABLE",
    "node_not_connected_exception": "CONNECTION_FAILED",
    "connect_transport_exception": "CONNECTION_FAILED",
    "receive_timeout_transport_exception": "NETWORK_TIMEOUT",
    "process_cluster_event_timeout_exception": "SERVICE_UNAVAILABLE",  # the master's, a 503
    "document_missing_exception": "MISSING_RESOURCE",
    "index_closed_exception": "INVALID_REQUEST",  # the index must be opened first
    "invalid_alias_name_exception": "INVALID_REQUEST",
    "invalid_type_name_exception": "INVALID_REQUEST",
    "routing_missing_exception": "CODE_DEFECT",
    "json_parse_exception": "CODE_DEFECT",  # the request body the client sent
    "number_format_exception": "INVALID_DATA",
    "search_context_missing_exception": "DEADLINE_EXCEEDED",  # the scroll's keep-alive ran out
    "index_shard_closed_exception": "SERVICE_UNAVAILABLE",  # a shard relocating or closing
    "node_disconnected_exception": "CONNECTION_FAILED",
}

# ---- Spark SQL error conditions (spark.apache.org/docs/latest/sql-error-conditions.html),
# printed `[TABLE_OR_VIEW_NOT_FOUND] ...`, by the SQLSTATE class the reference gives each.
SPARK: dict[str, str] = {
    "TABLE_OR_VIEW_NOT_FOUND": "MISSING_RESOURCE",  # 42P01
    "UNRESOLVED_COLUMN": "MISSING_RESOURCE",  # 42703
    "UNRESOLVED_ROUTINE": "MISSING_RESOURCE",  # 42883
    "SCHEMA_NOT_FOUND": "MISSING_RESOURCE",  # 42704
    "PATH_NOT_FOUND": "MISSING_FILE",  # 42K03
    "DIVIDE_BY_ZERO": "INVALID_DATA",  # 22012
    "CAST_INVALID_INPUT": "INVALID_DATA",  # 22018
    "CAST_OVERFLOW": "INVALID_DATA",  # 22003
    "ARITHMETIC_OVERFLOW": "INVALID_DATA",  # 22003
    "MALFORMED_RECORD_IN_PARSING": "INVALID_DATA",  # 22023
    "PARSE_SYNTAX_ERROR": "CODE_DEFECT",  # 42601
    "DATATYPE_MISMATCH": "CODE_DEFECT",  # 42K09
    "TABLE_OR_VIEW_ALREADY_EXISTS": "INVALID_REQUEST",  # 42P07
    "PATH_ALREADY_EXISTS": "INVALID_REQUEST",  # 42K04
    "UNABLE_TO_ACQUIRE_MEMORY": "OUT_OF_MEMORY",  # 53200
    "NOT_NULL_CONSTRAINT_VIOLATION": "INVALID_DATA",  # 42000, a null in a non-null field
    "CANNOT_PARSE_TIMESTAMP": "INVALID_DATA",  # 22007
    "INCOMPATIBLE_DATA_FOR_TABLE": "INVALID_DATA",  # KD000
    "UNRESOLVED_FIELD": "MISSING_RESOURCE",  # 42703
    "UNRESOLVED_MAP_KEY": "MISSING_RESOURCE",  # 42703
    "UNRESOLVED_USING_COLUMN_FOR_JOIN": "MISSING_RESOURCE",  # 42703
    "FIELD_NOT_FOUND": "MISSING_RESOURCE",  # 42704
    "ROUTINE_NOT_FOUND": "MISSING_RESOURCE",  # 42883
    "DATA_SOURCE_NOT_FOUND": "MISSING_MODULE",  # 42K02: the format's package is not installed
    "AMBIGUOUS_REFERENCE": "CODE_DEFECT",  # 42704
    "AMBIGUOUS_COLUMN_OR_FIELD": "CODE_DEFECT",  # 42702
    "MISSING_AGGREGATION": "CODE_DEFECT",  # 42803
    "MISSING_GROUP_BY": "CODE_DEFECT",  # 42803
    "INSERT_COLUMN_ARITY_MISMATCH": "CODE_DEFECT",  # 21S01
    "INCOMPATIBLE_COLUMN_TYPE": "CODE_DEFECT",  # 42825
    "NUM_COLUMNS_MISMATCH": "CODE_DEFECT",  # 42826
    "WRONG_NUM_ARGS": "CODE_DEFECT",  # 42605
    "COLUMN_ALREADY_EXISTS": "CODE_DEFECT",  # 42711
    "UNSUPPORTED_FEATURE": "INVALID_REQUEST",  # 0A000
    "UNSUPPORTED_DATATYPE": "INVALID_REQUEST",  # 0A000
    "SCHEMA_ALREADY_EXISTS": "INVALID_REQUEST",  # 42P06
    "CAST_OVERFLOW_IN_TABLE_INSERT": "INVALID_DATA",  # 22003
    "NUMERIC_VALUE_OUT_OF_RANGE": "INVALID_DATA",  # 22003
    "INVALID_ARRAY_INDEX": "INVALID_DATA",  # 22003
    "INVALID_ARRAY_INDEX_IN_ELEMENT_AT": "INVALID_DATA",  # 22003
    "INTERVAL_DIVIDED_BY_ZERO": "INVALID_DATA",  # 22012
    "DUPLICATED_MAP_KEY": "INVALID_DATA",  # 23505
    "NULL_MAP_KEY": "INVALID_DATA",  # 2200E
    "SCALAR_SUBQUERY_TOO_MANY_ROWS": "INVALID_DATA",  # 21000
    "CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE": "INVALID_DATA",  # 42825: files' schemas disagree
    "CONVERSION_INVALID_INPUT": "INVALID_DATA",  # 22018
    "CANNOT_READ_FILE_FOOTER": "INVALID_DATA",  # KD001: a corrupt or non-Parquet file
    # Databricks' and Delta Lake's conditions in the same reference format
    "INSUFFICIENT_PERMISSIONS": "PERMISSION_DENIED",  # 42501
    "DELTA_TABLE_NOT_FOUND": "MISSING_RESOURCE",  # 42P01
    "DELTA_PATH_DOES_NOT_EXIST": "MISSING_FILE",  # 42K03
    "DELTA_CONCURRENT_APPEND": "TRANSACTION_CONFLICT",  # 2D521
    "DELTA_METADATA_CHANGED": "TRANSACTION_CONFLICT",  # 2D521
    "DELTA_FAILED_TO_MERGE_FIELDS": "INVALID_DATA",  # 22005
}

# ---- Trino (and Athena): StandardErrorCode names (io.trino.spi.StandardErrorCode), printed
# `TABLE_NOT_FOUND: line 1:15: ...` or `TrinoUserError(..., name=TABLE_NOT_FOUND, ...)`.
TRINO: dict[str, str] = {
    "TABLE_NOT_FOUND": "MISSING_RESOURCE",
    "COLUMN_NOT_FOUND": "MISSING_RESOURCE",
    "SCHEMA_NOT_FOUND": "MISSING_RESOURCE",
    "CATALOG_NOT_FOUND": "MISSING_RESOURCE",
    "FUNCTION_NOT_FOUND": "MISSING_RESOURCE",
    "SYNTAX_ERROR": "CODE_DEFECT",
    "TYPE_MISMATCH": "CODE_DEFECT",
    "DIVISION_BY_ZERO": "INVALID_DATA",
    "INVALID_CAST_ARGUMENT": "INVALID_DATA",
    "INVALID_FUNCTION_ARGUMENT": "INVALID_DATA",
    "NUMERIC_VALUE_OUT_OF_RANGE": "INVALID_DATA",
    "HIVE_BAD_DATA": "INVALID_DATA",
    "HIVE_PARTITION_SCHEMA_MISMATCH": "INVALID_DATA",
    "HIVE_CURSOR_ERROR": "INVALID_DATA",
    "EXCEEDED_TIME_LIMIT": "DEADLINE_EXCEEDED",
    "EXCEEDED_LOCAL_MEMORY_LIMIT": "SERVER_MEMORY_LIMIT",
    "EXCEEDED_GLOBAL_MEMORY_LIMIT": "SERVER_MEMORY_LIMIT",
    "CLUSTER_OUT_OF_MEMORY": "SERVER_MEMORY_LIMIT",
    "NO_NODES_AVAILABLE": "SERVICE_UNAVAILABLE",
    "SERVER_STARTING_UP": "SERVICE_UNAVAILABLE",
    "QUERY_QUEUE_FULL": "RATE_LIMITED",
    "TABLE_ALREADY_EXISTS": "INVALID_REQUEST",
    # the rest of StandardErrorCode (core/trino-spi/.../StandardErrorCode.java)
    "NOT_FOUND": "MISSING_RESOURCE",
    "PROCEDURE_NOT_FOUND": "MISSING_RESOURCE",
    "TYPE_NOT_FOUND": "MISSING_RESOURCE",
    "ROLE_NOT_FOUND": "MISSING_RESOURCE",
    "MISSING_TABLE": "MISSING_RESOURCE",
    "OPERATOR_NOT_FOUND": "CODE_DEFECT",  # no operator for these argument types
    "INVALID_VIEW": "CODE_DEFECT",
    "AMBIGUOUS_NAME": "CODE_DEFECT",
    "AMBIGUOUS_FUNCTION_CALL": "CODE_DEFECT",
    "DUPLICATE_COLUMN_NAME": "CODE_DEFECT",
    "MISSING_COLUMN_NAME": "CODE_DEFECT",
    "MISMATCHED_COLUMN_ALIASES": "CODE_DEFECT",
    "INVALID_COLUMN_REFERENCE": "CODE_DEFECT",
    "MISSING_GROUP_BY": "CODE_DEFECT",
    "EXPRESSION_NOT_AGGREGATE": "CODE_DEFECT",
    "NESTED_AGGREGATION": "CODE_DEFECT",
    "INVALID_LITERAL": "CODE_DEFECT",
    "INVALID_ARGUMENTS": "CODE_DEFECT",
    "TOO_MANY_ARGUMENTS": "CODE_DEFECT",
    "INVALID_WINDOW_FRAME": "CODE_DEFECT",
    "ALREADY_EXISTS": "INVALID_REQUEST",
    "SCHEMA_ALREADY_EXISTS": "INVALID_REQUEST",
    "COLUMN_ALREADY_EXISTS": "INVALID_REQUEST",
    "NOT_SUPPORTED": "INVALID_REQUEST",
    "READ_ONLY_VIOLATION": "INVALID_REQUEST",  # a write to a read-only catalog
    "INVALID_SESSION_PROPERTY": "INVALID_REQUEST",
    "INVALID_TABLE_PROPERTY": "INVALID_REQUEST",
    "INVALID_SCHEMA_PROPERTY": "INVALID_REQUEST",
    "INVALID_COLUMN_PROPERTY": "INVALID_REQUEST",
    "CONSTRAINT_VIOLATION": "INVALID_DATA",
    "SUBQUERY_MULTIPLE_ROWS": "INVALID_DATA",
    "TRANSACTION_CONFLICT": "TRANSACTION_CONFLICT",
    "QUERY_REJECTED": "RATE_LIMITED",  # refused by the resource group's limits
    "EXCEEDED_FUNCTION_MEMORY_LIMIT": "SERVER_MEMORY_LIMIT",
    "EXCEEDED_CPU_LIMIT": "RESOURCE_EXHAUSTED",
    "EXCEEDED_SCAN_LIMIT": "RESOURCE_EXHAUSTED",
    "EXCEEDED_SPILL_LIMIT": "RESOURCE_EXHAUSTED",
    "GENERIC_INSUFFICIENT_RESOURCES": "RESOURCE_EXHAUSTED",
    "OUT_OF_SPILL_SPACE": "DISK_FULL",
    "OPTIMIZER_TIMEOUT": "DEADLINE_EXCEEDED",
    "ADMINISTRATIVELY_PREEMPTED": "CONTAINER_EVICTED",
    "SERVER_SHUTTING_DOWN": "SERVICE_UNAVAILABLE",
    "TOO_MANY_REQUESTS_FAILED": "SERVICE_UNAVAILABLE",  # a worker stopped answering
    "REMOTE_TASK_ERROR": "SERVICE_UNAVAILABLE",
    "REMOTE_HOST_GONE": "CONNECTION_FAILED",
    "PAGE_TRANSPORT_ERROR": "CONNECTION_FAILED",
    "PAGE_TRANSPORT_TIMEOUT": "NETWORK_TIMEOUT",
    # connectors' codes (HiveErrorCode, IcebergErrorCode)
    "HIVE_METASTORE_ERROR": "SERVICE_UNAVAILABLE",
    "HIVE_FILE_NOT_FOUND": "MISSING_FILE",
    "ICEBERG_COMMIT_ERROR": "TRANSACTION_CONFLICT",  # another writer committed first
    # the memory limits' own messages, printed without the code name
    "Query exceeded per-node memory limit": "SERVER_MEMORY_LIMIT",
    "Query exceeded per-node user memory limit": "SERVER_MEMORY_LIMIT",
    "Query exceeded distributed user memory limit": "SERVER_MEMORY_LIMIT",
}
# io.trino.spi.ErrorType, printed `type=USER_ERROR` or `"errorType":"USER_ERROR"`: a weak
# answer the code name beside it overrides (INTERNAL_ERROR and EXTERNAL name no family).
TRINO_TYPES: dict[str, str] = {
    "USER_ERROR": "CODE_DEFECT",
    "INSUFFICIENT_RESOURCES": "RESOURCE_EXHAUSTED",
}

# ---- ClickHouse: src/Common/ErrorCodes.cpp, printed as
# `Code: 60. DB::Exception: ... (UNKNOWN_TABLE)` (also `DB::NetException`, `DB::ParsingException`,
# `Coordination::Exception`). Codes whose meaning depends on where they arose (ABORTED,
# SYSTEM_ERROR, S3_ERROR, ATTEMPT_TO_READ_AFTER_EOF, POCO_EXCEPTION) are left to the message.
CLICKHOUSE: dict[int, tuple[str, str]] = {
    6: ("CANNOT_PARSE_TEXT", "INVALID_DATA"),
    8: ("THERE_IS_NO_COLUMN", "MISSING_RESOURCE"),
    10: ("NOT_FOUND_COLUMN_IN_BLOCK", "MISSING_RESOURCE"),
    15: ("DUPLICATE_COLUMN", "CODE_DEFECT"),
    16: ("NO_SUCH_COLUMN_IN_TABLE", "MISSING_RESOURCE"),
    26: ("CANNOT_PARSE_QUOTED_STRING", "INVALID_DATA"),
    27: ("CANNOT_PARSE_INPUT_ASSERTION_FAILED", "INVALID_DATA"),
    33: ("CANNOT_READ_ALL_DATA", "INVALID_DATA"),  # the input ends before the row does
    36: ("BAD_ARGUMENTS", "CODE_DEFECT"),
    38: ("CANNOT_PARSE_DATE", "INVALID_DATA"),
    40: ("CHECKSUM_DOESNT_MATCH", "INVALID_DATA"),  # corrupt compressed data
    41: ("CANNOT_PARSE_DATETIME", "INVALID_DATA"),
    42: ("NUMBER_OF_ARGUMENTS_DOESNT_MATCH", "CODE_DEFECT"),
    43: ("ILLEGAL_TYPE_OF_ARGUMENT", "CODE_DEFECT"),
    44: ("ILLEGAL_COLUMN", "CODE_DEFECT"),
    46: ("UNKNOWN_FUNCTION", "MISSING_RESOURCE"),
    47: ("UNKNOWN_IDENTIFIER", "MISSING_RESOURCE"),
    48: ("NOT_IMPLEMENTED", "CODE_DEFECT"),
    50: ("UNKNOWN_TYPE", "CODE_DEFECT"),
    53: ("TYPE_MISMATCH", "CODE_DEFECT"),
    57: ("TABLE_ALREADY_EXISTS", "INVALID_REQUEST"),
    60: ("UNKNOWN_TABLE", "MISSING_RESOURCE"),
    62: ("SYNTAX_ERROR", "CODE_DEFECT"),
    70: ("CANNOT_CONVERT_TYPE", "INVALID_DATA"),
    72: ("CANNOT_PARSE_NUMBER", "INVALID_DATA"),
    73: ("UNKNOWN_FORMAT", "INVALID_REQUEST"),
    76: ("CANNOT_OPEN_FILE", "MISSING_FILE"),
    81: ("UNKNOWN_DATABASE", "MISSING_RESOURCE"),
    82: ("DATABASE_ALREADY_EXISTS", "INVALID_REQUEST"),
    107: ("FILE_DOESNT_EXIST", "MISSING_FILE"),
    115: ("UNKNOWN_SETTING", "INVALID_REQUEST"),
    117: ("INCORRECT_DATA", "INVALID_DATA"),
    153: ("ILLEGAL_DIVISION", "INVALID_DATA"),
    158: ("TOO_MANY_ROWS", "RESOURCE_EXHAUSTED"),  # max_rows_to_read and the like
    159: ("TIMEOUT_EXCEEDED", "DEADLINE_EXCEEDED"),
    160: ("TOO_SLOW", "DEADLINE_EXCEEDED"),  # estimated to exceed max_execution_time
    164: ("READONLY", "PERMISSION_DENIED"),  # the user may not change settings or data
    173: ("CANNOT_ALLOCATE_MEMORY", "SERVER_MEMORY_LIMIT"),
    192: ("UNKNOWN_USER", "AUTHENTICATION_FAILED"),
    193: ("WRONG_PASSWORD", "AUTHENTICATION_FAILED"),
    194: ("REQUIRED_PASSWORD", "AUTHENTICATION_FAILED"),
    195: ("IP_ADDRESS_NOT_ALLOWED", "PERMISSION_DENIED"),
    198: ("DNS_ERROR", "NAME_RESOLUTION_FAILED"),
    201: ("QUOTA_EXPIRED", "RATE_LIMITED"),  # the user's quota for the interval is used up
    202: ("TOO_MANY_SIMULTANEOUS_QUERIES", "RATE_LIMITED"),
    203: ("NO_FREE_CONNECTION", "CONNECTIONS_EXHAUSTED"),
    207: ("AMBIGUOUS_IDENTIFIER", "CODE_DEFECT"),
    209: ("SOCKET_TIMEOUT", "NETWORK_TIMEOUT"),
    210: ("NETWORK_ERROR", "CONNECTION_FAILED"),
    215: ("NOT_AN_AGGREGATE", "CODE_DEFECT"),
    241: ("MEMORY_LIMIT_EXCEEDED", "SERVER_MEMORY_LIMIT"),
    242: ("TABLE_IS_READ_ONLY", "SERVICE_UNAVAILABLE"),  # the replica lost its Keeper session
    243: ("NOT_ENOUGH_SPACE", "DISK_FULL"),
    252: ("TOO_MANY_PARTS", "RATE_LIMITED"),  # inserts outpace merges: insert less often
    258: ("UNION_ALL_RESULT_STRUCTURES_MISMATCH", "CODE_DEFECT"),
    279: ("ALL_CONNECTION_TRIES_FAILED", "CONNECTION_FAILED"),
    285: ("TOO_FEW_LIVE_REPLICAS", "SERVICE_UNAVAILABLE"),
    286: ("UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE", "SERVICE_UNAVAILABLE"),
    290: ("LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"),
    291: ("DATABASE_ACCESS_DENIED", "PERMISSION_DENIED"),
    306: ("TOO_DEEP_RECURSION", "CODE_DEFECT"),
    321: ("VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE", "INVALID_DATA"),
    349: ("CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN", "INVALID_DATA"),
    352: ("AMBIGUOUS_COLUMN_NAME", "CODE_DEFECT"),
    364: ("RECEIVED_ERROR_TOO_MANY_REQUESTS", "RATE_LIMITED"),
    376: ("CANNOT_PARSE_UUID", "INVALID_DATA"),
    386: ("NO_COMMON_TYPE", "CODE_DEFECT"),
    407: ("DECIMAL_OVERFLOW", "INVALID_DATA"),
    410: ("EXTERNAL_SERVER_IS_NOT_RESPONDING", "SERVICE_UNAVAILABLE"),
    467: ("CANNOT_PARSE_BOOL", "INVALID_DATA"),
    469: ("VIOLATED_CONSTRAINT", "INVALID_DATA"),
    473: ("DEADLOCK_AVOIDED", "TRANSACTION_CONFLICT"),
    481: ("PATH_ACCESS_DENIED", "PERMISSION_DENIED"),
    482: ("DICTIONARY_ACCESS_DENIED", "PERMISSION_DENIED"),
    488: ("UNKNOWN_DICTIONARY", "MISSING_RESOURCE"),
    497: ("ACCESS_DENIED", "PERMISSION_DENIED"),
    511: ("UNKNOWN_ROLE", "MISSING_RESOURCE"),
    516: ("AUTHENTICATION_FAILED", "AUTHENTICATION_FAILED"),
    999: ("KEEPER_EXCEPTION", "SERVICE_UNAVAILABLE"),  # ClickHouse Keeper / ZooKeeper lost
}

# ---- DuckDB: the error type every client prints before the message (`Catalog Error: Table with
# name t does not exist!`; Exception::ExceptionTypeToString in src/common/exception.cpp), by the
# family its Python exception class has. Types other tools also print with another meaning
# (Connection, IO, HTTP, Dependency, Serialization) are left to the message.
DUCKDB: dict[str, str] = {
    "Catalog": "MISSING_RESOURCE",
    "Binder": "CODE_DEFECT",
    "Parser": "CODE_DEFECT",
    "Conversion": "INVALID_DATA",
    "Constraint": "INVALID_DATA",
    "Invalid Input": "INVALID_DATA",
    "Out of Range": "INVALID_DATA",
    "Mismatch Type": "INVALID_DATA",
    "Out of Memory": "OUT_OF_MEMORY",  # DuckDB runs in the job's process (its memory_limit)
    "Permission": "PERMISSION_DENIED",
    "TransactionContext": "TRANSACTION_CONFLICT",  # a write-write conflict with another writer
    "Not implemented": "CODE_DEFECT",
    "Missing Extension": "MISSING_MODULE",
    "Extension Autoloading": "MISSING_MODULE",
}

# ---- Snowflake login failures (docs.snowflake.com/user-guide/key-pair-auth-troubleshooting and
# the connectors' error references): they print SQLSTATE 08001/08004, a connection class, but a
# refused login is not a network failure, so the vendor code or its text decides.
SNOWFLAKE: dict[str, str] = {
    "390100": "AUTHENTICATION_FAILED",  # Incorrect username or password was specified
    "390114": "AUTHENTICATION_FAILED",  # Authentication token has expired
    "390144": "AUTHENTICATION_FAILED",  # JWT token is invalid
    "Incorrect username or password was specified": "AUTHENTICATION_FAILED",
    "Authentication token has expired": "AUTHENTICATION_FAILED",
    "JWT token is invalid": "AUTHENTICATION_FAILED",
}

# ---- Azure: Resource Manager's common deployment errors (learn.microsoft.com/azure/azure-
# resource-manager/troubleshooting/common-deployment-errors) and Blob storage's error codes
# (learn.microsoft.com/rest/api/storageservices/blob-service-error-codes), printed
# `(AuthorizationFailed) ...`, `Code: ResourceGroupNotFound` or `ErrorCode:BlobNotFound`; each
# is an HTTP status's family. Every Entra ID `AADSTSnnnnn` code is a refused sign-in.
AZURE: dict[str, str] = {
    "AuthorizationFailed": "PERMISSION_DENIED",  # 403
    "AuthorizationPermissionMismatch": "PERMISSION_DENIED",  # 403
    "AuthorizationFailure": "PERMISSION_DENIED",  # 403
    "LinkedAuthorizationFailed": "PERMISSION_DENIED",  # 403
    "AuthenticationFailed": "AUTHENTICATION_FAILED",  # 403 with a bad signature or key
    "InvalidAuthenticationToken": "AUTHENTICATION_FAILED",  # 401
    "ExpiredAuthenticationToken": "AUTHENTICATION_FAILED",  # 401
    "ResourceNotFound": "MISSING_RESOURCE",  # 404
    "ResourceGroupNotFound": "MISSING_RESOURCE",  # 404
    "SubscriptionNotFound": "MISSING_RESOURCE",  # 404
    "BlobNotFound": "MISSING_RESOURCE",  # 404
    "ContainerNotFound": "MISSING_RESOURCE",  # 404
    "ServerBusy": "RATE_LIMITED",  # 503: storage throttling, retry with backoff
    "OperationTimedOut": "SERVICE_UNAVAILABLE",  # 500: a remote 5xx, retried with backoff
    "QuotaExceeded": "RESOURCE_EXHAUSTED",
    "SkuNotAvailable": "RESOURCE_EXHAUSTED",
    "InvalidTemplate": "INVALID_REQUEST",  # 400
    "InvalidTemplateDeployment": "INVALID_REQUEST",  # 400
    "InvalidResourceReference": "MISSING_RESOURCE",  # 404: a referenced resource
    "RequestDisallowedByPolicy": "PERMISSION_DENIED",  # an Azure Policy assignment forbids it
    "MissingSubscriptionRegistration": "INVALID_REQUEST",  # the resource provider
    "ResourceQuotaExceeded": "RESOURCE_EXHAUSTED",
    "AllocationFailed": "RESOURCE_EXHAUSTED",  # no capacity for the size in the region
    "Conflict": "TRANSACTION_CONFLICT",  # 409: another operation on the resource is running
    # Storage (Blob, Data Lake) codes
    "ContainerAlreadyExists": "INVALID_REQUEST",  # 409
    "BlobAlreadyExists": "INVALID_REQUEST",  # 409
    "ContainerBeingDeleted": "SERVICE_UNAVAILABLE",  # 409: try again later
    "InvalidResourceName": "INVALID_REQUEST",  # 400
    "OutOfRangeInput": "INVALID_REQUEST",  # 400
    "InvalidQueryParameterValue": "INVALID_REQUEST",  # 400
    "MissingRequiredHeader": "INVALID_REQUEST",  # 400
    "InvalidAuthenticationInfo": "AUTHENTICATION_FAILED",  # 400
    "InsufficientAccountPermissions": "PERMISSION_DENIED",  # 403
    "AccountIsDisabled": "PERMISSION_DENIED",  # 403
    "AuthorizationResourceTypeMismatch": "PERMISSION_DENIED",  # 403
    "AuthorizationSourceIPMismatch": "PERMISSION_DENIED",  # 403: the firewall's allowed IPs
    "AuthorizationProtocolMismatch": "PERMISSION_DENIED",  # 403
    "AuthorizationServiceMismatch": "PERMISSION_DENIED",  # 403
    "RequestBodyTooLarge": "INVALID_DATA",  # 413
    "ConditionNotMet": "TRANSACTION_CONFLICT",  # 412: another writer changed the blob
    "LeaseIdMissing": "TRANSACTION_CONFLICT",  # 412: another writer holds the lease
    "LeaseAlreadyPresent": "TRANSACTION_CONFLICT",  # 409
    "InternalError": "SERVICE_UNAVAILABLE",  # 500
    "PathNotFound": "MISSING_FILE",  # Data Lake Gen2: no such path
    "FilesystemNotFound": "MISSING_RESOURCE",
    "ShareNotFound": "MISSING_RESOURCE",
    "QueueNotFound": "MISSING_RESOURCE",
}

# ---- Exception classes of these services' clients, by the family their docs give them:
# Kafka's Java client (org.apache.kafka.common.errors), pymongo / the MongoDB Java and Node
# drivers, redis-py, elasticsearch-py, Hadoop/HDFS (org.apache.hadoop.*), Hive.
CLASSES: dict[str, str] = {
    "NotLeaderOrFollowerException": "SERVICE_UNAVAILABLE",
    "NotLeaderForPartitionException": "SERVICE_UNAVAILABLE",
    "LeaderNotAvailableException": "SERVICE_UNAVAILABLE",
    "NotEnoughReplicasException": "SERVICE_UNAVAILABLE",
    "NotCoordinatorException": "SERVICE_UNAVAILABLE",
    "CoordinatorNotAvailableException": "SERVICE_UNAVAILABLE",
    "BrokerNotAvailableException": "SERVICE_UNAVAILABLE",
    "KafkaStorageException": "SERVICE_UNAVAILABLE",
    "UnknownTopicOrPartitionException": "MISSING_RESOURCE",
    "TopicAuthorizationException": "PERMISSION_DENIED",
    "GroupAuthorizationException": "PERMISSION_DENIED",
    "ClusterAuthorizationException": "PERMISSION_DENIED",
    "TransactionalIdAuthorizationException": "PERMISSION_DENIED",
    "SaslAuthenticationException": "AUTHENTICATION_FAILED",
    "RecordTooLargeException": "INVALID_DATA",
    "RecordBatchTooLargeException": "INVALID_DATA",
    "CorruptRecordException": "INVALID_DATA",
    "NetworkException": "CONNECTION_FAILED",
    "CommitFailedException": "TRANSACTION_CONFLICT",
    "RebalanceInProgressException": "TRANSACTION_CONFLICT",
    "OffsetOutOfRangeException": "INVALID_REQUEST",
    "InvalidTopicException": "INVALID_REQUEST",
    "TopicExistsException": "INVALID_REQUEST",
    "ThrottlingQuotaExceededException": "RATE_LIMITED",
    "KafkaTimeoutError": "NETWORK_TIMEOUT",
    "ServerSelectionTimeoutError": "CONNECTION_FAILED",
    "MongoServerSelectionError": "CONNECTION_FAILED",
    "MongoNetworkError": "CONNECTION_FAILED",
    "MongoNetworkTimeoutError": "NETWORK_TIMEOUT",
    "MongoTimeoutException": "CONNECTION_FAILED",
    "MongoSocketOpenException": "CONNECTION_FAILED",
    "MongoSocketReadTimeoutException": "NETWORK_TIMEOUT",
    "MongoSecurityException": "AUTHENTICATION_FAILED",
    "NetworkTimeout": "NETWORK_TIMEOUT",
    "ExecutionTimeout": "DEADLINE_EXCEEDED",
    "DuplicateKeyError": "INVALID_DATA",
    "NotPrimaryError": "SERVICE_UNAVAILABLE",
    "BusyLoadingError": "SERVICE_UNAVAILABLE",
    "ReadOnlyError": "SERVICE_UNAVAILABLE",
    "ClusterDownError": "SERVICE_UNAVAILABLE",
    "TryAgainError": "SERVICE_UNAVAILABLE",
    "NoPermissionError": "PERMISSION_DENIED",
    "ConnectionTimeout": "NETWORK_TIMEOUT",
    "AuthorizationException": "PERMISSION_DENIED",
    "ConflictError": "TRANSACTION_CONFLICT",
    "AccessControlException": "PERMISSION_DENIED",
    "SafeModeException": "SERVICE_UNAVAILABLE",
    "StandbyException": "SERVICE_UNAVAILABLE",
    "DSQuotaExceededException": "DISK_FULL",
    "NSQuotaExceededException": "DISK_FULL",
    "QuotaExceededException": "DISK_FULL",
    "DiskErrorException": "DISK_FULL",
    "LeaseExpiredException": "TRANSACTION_CONFLICT",
    "AlreadyBeingCreatedException": "TRANSACTION_CONFLICT",
    "ChecksumException": "INVALID_DATA",
    "BlockMissingException": "SERVICE_UNAVAILABLE",
    "FileAlreadyExistsException": "INVALID_REQUEST",
    "SchemaColumnConvertNotSupportedException": "INVALID_DATA",
    "SemanticException": "CODE_DEFECT",
    "InvalidTableException": "MISSING_RESOURCE",
    # Delta Lake's optimistic-concurrency conflicts (docs.delta.io, "Concurrency control"):
    # another writer committed first; the transaction can be retried.
    "ConcurrentAppendException": "TRANSACTION_CONFLICT",
    "ConcurrentDeleteReadException": "TRANSACTION_CONFLICT",
    "ConcurrentDeleteDeleteException": "TRANSACTION_CONFLICT",
    "ConcurrentTransactionException": "TRANSACTION_CONFLICT",
    "MetadataChangedException": "TRANSACTION_CONFLICT",
    "ProtocolChangedException": "TRANSACTION_CONFLICT",
    "ResourceExistsError": "INVALID_REQUEST",  # azure.core.exceptions
    "ResourceModifiedError": "TRANSACTION_CONFLICT",
    "ServiceRequestError": "CONNECTION_FAILED",
    "ServiceResponseError": "CONNECTION_FAILED",
    # the rest of org.apache.kafka.common.errors / org.apache.kafka.connect.errors
    "InvalidGroupIdException": "INVALID_REQUEST",
    "FencedInstanceIdException": "INVALID_REQUEST",  # two consumers share a group.instance.id
    "RetriableException": "SERVICE_UNAVAILABLE",  # the base of the errors Kafka retries
    "DataException": "INVALID_DATA",  # Connect's conversion of a record failed
    # pymongo.errors
    "AutoReconnect": "CONNECTION_FAILED",  # the connection was lost; the driver reconnects
    "DocumentTooLarge": "INVALID_DATA",
    "InvalidURI": "INVALID_REQUEST",
    # Apache Spark
    "FetchFailedException": "CONNECTION_FAILED",  # a shuffle block's executor went away
    "SparkUpgradeException": "INVALID_REQUEST",  # behaviour changed: the legacy setting decides
    # Apache Flink (org.apache.flink.runtime)
    "NoResourceAvailableException": "RESOURCE_EXHAUSTED",  # no free task slots
}

# ---- google.api_core.exceptions (googleapis.dev/python/google-api-core/latest/
# exceptions.html): one class per HTTP status / gRPC code; names the class pattern misses.
GOOGLE_API_CORE: dict[str, str] = {
    "AlreadyExists": "INVALID_REQUEST",
    "Conflict": "INVALID_REQUEST",
    "FailedPrecondition": "INVALID_REQUEST",
    "InvalidArgument": "INVALID_REQUEST",
    "MethodNotImplemented": "INVALID_REQUEST",
    "OutOfRange": "INVALID_DATA",
    "Aborted": "TRANSACTION_CONFLICT",
    "PermissionDenied": "PERMISSION_DENIED",
    "GatewayTimeout": "SERVICE_UNAVAILABLE",  # 504: a remote 5xx
    "BadGateway": "SERVICE_UNAVAILABLE",  # 502
    "PreconditionFailed": "TRANSACTION_CONFLICT",  # 412: the object's generation moved on
    "MethodNotAllowed": "INVALID_REQUEST",  # 405
    "LengthRequired": "INVALID_REQUEST",  # 411
    "RequestRangeNotSatisfiable": "INVALID_REQUEST",  # 416
    # gRPC DEADLINE_EXCEEDED: the client's own deadline on one remote call, NETWORK by the
    # labelling conventions (a deadline the job or its query exceeded is TIMEOUT)
    "DeadlineExceeded": "NETWORK_TIMEOUT",
    "RetryError": "NETWORK_TIMEOUT",  # the client's retry deadline on a remote call
}


@dataclass(frozen=True)
class Found:
    """A service code read from the text: its family, evidence, position and weakness."""

    code: str
    evidence: str
    position: int
    weak: bool = False


@cache
def _patterns() -> dict[str, TextPattern]:
    """Each standard's pattern, compiled once (RE2, case-sensitive, bounded)."""
    kafka_camel = [_camel(name) for name in KAFKA]
    return {
        "oracle": raw_pattern(r"\b((?:ORA|TNS)-\d{5}|DP[IY]-\d{4})\b"),
        "sqlserver": raw_pattern(
            r"\bMsg (-?\d{1,5}), Level \d|"
            r"\[SQL Server\][^\n]*?\((-?\d{1,5})\) \(SQL[A-Za-z]*\)|"
            r"\bError Number: ?(-?\d{1,5})\b|"
            r"\((\d{2,5}), b[\"']"
        ),
        "sqlserver_text": raw_pattern(rf"\b({literal_alternation(list(SQL_SERVER_MESSAGES))})\b"),
        "freetds": raw_pattern(r"\bDB-Lib error message (\d{5})\b"),
        "kafka": raw_pattern(
            rf"\b({literal_alternation(list(KAFKA))})\b|"
            rf"\b({literal_alternation(kafka_camel)})(?:Error|Exception)?\b"
        ),
        "librdkafka": raw_pattern(rf"\b({literal_alternation(list(LIBRDKAFKA))})\b"),
        "mongodb": raw_pattern(
            r"\bcodeName[\"']?\s*[:=]\s*[\"']?([A-Za-z]+)|"
            r"\berror -?\d{1,5} \(([A-Za-z]+)\)|"
            r"\(([A-Z][A-Za-z]+)\) |"
            r"\b(E11000) duplicate key"
        ),
        "redis": raw_pattern(rf"\b({literal_alternation(list(REDIS))})\b"),
        "redis_redirect": raw_pattern(_REDIS_REDIRECT),
        "elasticsearch": raw_pattern(r"\b([a-z]+(?:_[a-z]+)*_exception)\b"),
        "spark": raw_pattern(r"\[([A-Z][A-Z0-9_]{3,60})(?:\.[A-Z0-9_]+)?\]"),
        "trino": raw_pattern(rf"\b({literal_alternation(list(TRINO))})\b"),
        "trino_type": raw_pattern(
            r"\b(?:type=|\"errorType\"\s*:\s*\")(USER_ERROR|INSUFFICIENT_RESOURCES)\b"
        ),
        "google": raw_pattern(r"\bgoogle\.(?:api_core|cloud)\.exceptions\.([A-Za-z]+)\b"),
        "clickhouse": raw_pattern(
            r"\bCode: (\d{1,4})[.,]\s+(?:e\.displayText\(\) = )?"
            r"(?:DB|Coordination)::[A-Za-z]*Exception\b|"
            rf"\(({literal_alternation([name for name, _ in CLICKHOUSE.values()])})\)"
        ),
        "azure": raw_pattern(
            r"\b(?:ErrorCode|Code|code)[\"']?\s?[:=]\s?[\"']?([A-Z][A-Za-z]+)\b|"
            r"\(([A-Z][A-Za-z]+)\) |\b(AADSTS)\d{5,7}\b"
        ),
        "node": raw_pattern(rf"\b({literal_alternation(list(runtime_codes.NODE))})\b"),
        "node_spawn": raw_pattern(runtime_codes.NODE_SPAWN),
        "npm": raw_pattern(runtime_codes.NPM_CODE),
        "go_net": raw_pattern(runtime_codes.GO_NET_TIMEOUT),
        "duckdb": raw_pattern(rf"\b({literal_alternation(list(DUCKDB))}) Error: "),
        "sqlite": raw_pattern(r"\b(SQLITE_[A-Z]+(?:_[A-Z]+)*)\b"),
        "sqlite_text": raw_pattern(rf"\b({literal_alternation(list(sqlite_codes.MESSAGES))})\b"),
        "sqlite_error": raw_pattern(sqlite_codes.ERROR_MESSAGE),
        "snowflake": raw_pattern(
            rf"\b(39\d{{4}}) \([0-9A-Z]{{5}}\)|\bvendorCode: ?(39\d,\d{{3}})\b|"
            rf"\b({literal_alternation([k for k in SNOWFLAKE if not k.isdigit()])})\b"
        ),
    }


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


_KAFKA_BY_CAMEL = {_camel(name): name for name in KAFKA}


def _matches(name: str, text: str) -> list[tuple[str, int]]:
    """Each match's first non-empty group, at the group's own position (the code's place)."""
    found = []
    for match in _patterns()[name].finditer(text):  # type: ignore[attr-defined]
        index = next((i for i, g in enumerate(match.groups(), 1) if g), None)
        if index is not None:
            found.append((match.group(index), match.start(index)))
    return found


def _lookup(name: str, value: str) -> tuple[str, str] | None:
    """The family and evidence of one matched code of standard `name`, if it defines it."""
    if name == "sqlserver_text":
        number = SQL_SERVER_MESSAGES[value]
        return SQL_SERVER[number], f"SQL Server error {number} '{value}'"
    value = _KAFKA_BY_CAMEL.get(value, value) if name == "kafka" else value
    value = value.replace("TNS-", "ORA-") if name == "oracle" else value
    value = value.replace(",", "") if name == "snowflake" else value
    numbered = _NUMBERED.get(name)
    family = numbered.get(int(value)) if numbered else _TABLES[name].get(value)
    return (family, f"{_LABELS[name]} {value}") if family else None


_NUMBERED: dict[str, dict[int, str]] = {"sqlserver": SQL_SERVER, "freetds": FREETDS}
_TABLES: dict[str, dict[str, str]] = {
    "oracle": ORACLE,
    "kafka": KAFKA,
    "librdkafka": LIBRDKAFKA,
    "mongodb": {**MONGODB, "E11000": "INVALID_DATA"},
    "redis": REDIS,
    "redis_redirect": {"MOVED": _REDIS_REDIRECT_FAMILY, "ASK": _REDIS_REDIRECT_FAMILY},
    "elasticsearch": ELASTICSEARCH,
    "spark": SPARK,
    "trino": TRINO,
    "trino_type": TRINO_TYPES,
    "google": GOOGLE_API_CORE,
    "clickhouse": {
        **{str(number): family for number, (_, family) in CLICKHOUSE.items()},
        **dict(CLICKHOUSE.values()),
    },
    "node": runtime_codes.NODE,
    "node_spawn": {"ENOENT": runtime_codes.NODE_SPAWN_FAMILY},
    "npm": runtime_codes.NPM,
    "go_net": runtime_codes.GO_NET_TIMEOUTS,
    "duckdb": DUCKDB,
    "sqlite": sqlite_codes.CODES,
    "sqlite_text": sqlite_codes.MESSAGES,
    "sqlite_error": sqlite_codes.ERRORS,
    "snowflake": SNOWFLAKE,
    "azure": {**AZURE, "AADSTS": "AUTHENTICATION_FAILED"},
}
_WEAK = frozenset({"freetds", "trino_type"})
"""Standards whose codes are generic wrappers: any specific code beside them wins."""
_LABELS = {
    "oracle": "Oracle",
    "sqlserver": "SQL Server error",
    "freetds": "FreeTDS DB-Lib error",
    "kafka": "Kafka error",
    "librdkafka": "librdkafka error",
    "mongodb": "MongoDB error",
    "redis": "Redis error",
    "redis_redirect": "Redis cluster redirection",
    "elasticsearch": "Elasticsearch error type",
    "spark": "Spark error class",
    "trino": "Trino error",
    "trino_type": "Trino error type",
    "google": "google.api_core exception",
    "clickhouse": "ClickHouse error",
    "node": "Node.js error code",
    "node_spawn": "Node.js spawn of a missing command",
    "npm": "npm error code",
    "go_net": "Go net timeout in",
    "duckdb": "DuckDB error type",
    "sqlite": "SQLite result code",
    "sqlite_text": "SQLite message",
    "sqlite_error": "SQLite error",
    "snowflake": "Snowflake error",
    "azure": "Azure error",
}


def find(text: str) -> list[Found]:
    """Every documented service code in the text (generic wrappers marked weak)."""
    found = []
    for name in _patterns():
        for value, position in _matches(name, text):
            if decoded := _lookup(name, value):
                found.append(Found(decoded[0], decoded[1], position, weak=name in _WEAK))
    return found


def emitted_codes() -> set[str]:
    """Every family these tables can answer with."""
    codes = {code for table in [*_TABLES.values(), CLASSES] for code in table.values()}
    return codes | {code for table in _NUMBERED.values() for code in table.values()}
