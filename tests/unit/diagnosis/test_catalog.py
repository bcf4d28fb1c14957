"""The error catalog against real failure messages: what each one is, what is read out of it,
and what bunsui suggests first."""

from __future__ import annotations

import getpass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bunsui_core.actions import Gateway
from bunsui_core.diagnosis.catalog import (
    UNKNOWN,
    UNKNOWN_ENTRY,
    Catalog,
    definition,
    load_catalog,
)
from bunsui_core.diagnosis.classifier import MAX_CLASSIFIED_CHARS, classify, extract_context
from bunsui_core.diagnosis.vocabulary import Category, Layer, RecoveryAction
from bunsui_core.model.session import FailureKind

CATALOG = load_catalog()
ENTRIES = {entry.error_code: entry for entry in CATALOG.entries}
A = RecoveryAction
K = FailureKind

IAM_DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/etl/worker is not authorized to perform: "
    "s3:GetObject on resource: arn:aws:s3:::bucket/key because no identity-based policy allows "
    "the s3:GetObject action"
)
LAMBDA_REQUEST = "8f5c1a2e-3b4d-4e6f-9a0b-1c2d3e4f5a6b"
PY_TRACEBACK = (
    'Traceback (most recent call last):\n  File "/srv/etl/transform.py", line 42, in run\n'
)

# (expected error code, message, failure kind the engine observed, run facts)
Example = tuple[str, str, FailureKind | None, dict[str, Any]]

EXAMPLES: list[Example] = [
    # ---- local engine outcomes (bunsui's own wording, engine/local.py describe_failure) ----
    (
        "LOCAL_MEMORY_LIMIT",
        "Command exited with code 1 (memory limit 96 MiB, peak RSS 95.4 MiB)\n"
        + PY_TRACEBACK
        + "    rows = bytearray(150 * 1024 * 1024)\nMemoryError",
        K.EXIT_NONZERO,
        {},
    ),
    (
        "LOCAL_MEMORY_LIMIT",
        "Command exited with code 1 (memory limit 512 MiB, peak RSS 88.1 MiB)\n"
        "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 1.49 GiB for an array "
        "with shape (200000000,) and data type float64",
        K.EXIT_NONZERO,
        {},
    ),
    (
        "LOCAL_MEMORY_LIMIT",
        PY_TRACEBACK + "    frame = pd.concat(parts)\nMemoryError",
        K.EXIT_NONZERO,
        {"memory_limit_mb": 256, "peak_rss_mb": 250.2},
    ),
    (
        "LOCAL_MEMORY_LIMIT",
        "Command was killed by signal SIGABRT (memory limit 128 MiB, peak RSS 127.9 MiB)\n"
        "terminate called after throwing an instance of 'std::bad_alloc'\n"
        "  what():  std::bad_alloc",
        K.KILLED_BY_SIGNAL,
        {},
    ),
    ("LOCAL_TIMEOUT", "Command timed out after 30 seconds and was killed", K.TIMEOUT, {}),
    (
        "LOCAL_TIMEOUT",
        "Command timed out after 600 seconds and was killed "
        "(memory limit 2048 MiB, peak RSS 1200.5 MiB)",
        K.TIMEOUT,
        {},
    ),
    (
        "SESSION_TIMEOUT",
        "Session exceeded the pipeline's timeout_seconds and was stopped",
        K.SESSION_TIMEOUT,
        {},
    ),
    ("RUNNER_LOST", "Runner lost: runner process 48213 on etl-host-1 is gone", K.RUNNER_LOST, {}),
    (
        "RUNNER_LOST",
        "Runner lost: runner 48213 on etl-host-1 sent no heartbeat for 300 s",
        K.RUNNER_LOST,
        {},
    ),
    (
        "COMMAND_NOT_STARTED",
        "Command could not be started: [Errno 2] No such file or directory: 'spark-submitt'",
        K.SPAWN_FAILED,
        {},
    ),
    (
        "COMMAND_NOT_STARTED",
        "Command could not be started: [Errno 13] Permission denied: './run_etl.sh'",
        K.SPAWN_FAILED,
        {},
    ),
    # ---- memory ------------------------------------------------------------------------------
    ("ECS_OUT_OF_MEMORY", "OutOfMemoryError: Container killed due to memory usage", None, {}),
    (
        "ECS_OUT_OF_MEMORY",
        "Task arn:aws:ecs:us-east-1:123456789012:task/data-prod/0a1b2c3d4e5f stopped: "
        "Essential container in task exited. Container etl-worker: "
        "OutOfMemoryError: Container killed due to memory usage",
        None,
        {},
    ),
    (
        "LAMBDA_OUT_OF_MEMORY",
        '{"errorType": "Runtime.OutOfMemory", "errorMessage": "RequestId: '
        + LAMBDA_REQUEST
        + ' Error: Runtime exited with error: signal: killed"}',
        None,
        {},
    ),
    (
        "LAMBDA_OUT_OF_MEMORY",
        '{"errorMessage": "RequestId: '
        + LAMBDA_REQUEST
        + ' Error: Runtime exited with error: signal: killed", "errorType": "Runtime.ExitError"}',
        None,
        {},
    ),
    (
        "LAMBDA_OUT_OF_MEMORY",
        f"END RequestId: {LAMBDA_REQUEST}\n"
        f"REPORT RequestId: {LAMBDA_REQUEST}\tDuration: 2998.41 ms\tBilled Duration: 2999 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 128 MB\tInit Duration: 187.34 ms",
        None,
        {},
    ),
    (
        "SPARK_EXECUTOR_MEMORY",
        "ExecutorLostFailure (executor 4 exited caused by one of the running tasks) Reason: "
        "Container killed by YARN for exceeding memory limits. 5.6 GB of 5.5 GB physical memory "
        "used. Consider boosting spark.yarn.executor.memoryOverhead or disabling "
        "yarn.nodemanager.vmem-check-enabled because of YARN-4714.",
        None,
        {},
    ),
    (
        "SPARK_EXECUTOR_MEMORY",
        'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space',
        None,
        {},
    ),
    (
        "SPARK_EXECUTOR_MEMORY",
        "An error occurred while calling o112.pyWriteDynamicFrame. : "
        "org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 4.0 "
        "failed 4 times, most recent failure: Lost task 3.3 in stage 4.0 (TID 41) "
        "(172.35.1.10 executor 7): ExecutorLostFailure (executor 7 exited caused by one of the "
        "running tasks) Reason: The executor with id 7 exited with exit code 137"
        "(SIGKILL, possible container OOM).",
        None,
        {},
    ),
    (
        "SPARK_EXECUTOR_MEMORY",
        "ExecutorLostFailure (executor 2 exited caused by one of the running tasks) "
        "Reason: Container marked as failed: container_1700000000000_0001_01_000003 on "
        "host: ip-10-0-1-12.ec2.internal. Exit status: 137. Diagnostics: Container "
        "killed on request. Exit code is 137",
        None,
        {},
    ),
    (
        "PYTHON_MEMORY_ERROR",
        PY_TRACEBACK + "    frame = pd.concat(parts)\nMemoryError",
        None,
        {},
    ),
    (
        "PYTHON_MEMORY_ERROR",
        "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 1.49 GiB for an array "
        "with shape (200000000,) and data type float64",
        None,
        {},
    ),
    (
        "PYTHON_MEMORY_ERROR",
        "numpy._core._exceptions._ArrayMemoryError: Unable to allocate 763. MiB for an array "
        "with shape (10000, 10000) and data type float64",
        None,
        {},
    ),
    ("PYTHON_MEMORY_ERROR", "OSError: [Errno 12] Cannot allocate memory", None, {}),
    # ---- timeouts ----------------------------------------------------------------------------
    (
        "LAMBDA_TIMEOUT",
        f"2024-05-01T12:05:00.123Z {LAMBDA_REQUEST} Task timed out after 300.00 seconds",
        None,
        {},
    ),
    (
        "LAMBDA_TIMEOUT",
        '{"errorType": "Sandbox.Timedout", "errorMessage": "RequestId: '
        + LAMBDA_REQUEST
        + ' Error: Task timed out after 900.00 seconds"}',
        None,
        {},
    ),
    (
        "STATES_TIMEOUT",
        'TaskTimedOut: {"resourceType": "ecs", "resource": "runTask.sync", '
        '"error": "States.Timeout"}',
        None,
        {},
    ),
    (
        "STATES_TIMEOUT",
        'TaskTimedOut: {"resourceType": "glue", "resource": "startJobRun.sync", '
        '"error": "States.HeartbeatTimeout"}',
        None,
        {},
    ),
    # ---- throttling --------------------------------------------------------------------------
    (
        "AWS_THROTTLING",
        "botocore.errorfactory.ProvisionedThroughputExceededException: An error occurred "
        "(ProvisionedThroughputExceededException) when calling the PutItem operation (reached "
        "max retries: 9): The level of configured provisioned throughput for the table was "
        "exceeded. Consider increasing your provisioning level with the UpdateTable API.",
        None,
        {},
    ),
    (
        "AWS_THROTTLING",
        "An error occurred (ThrottlingException) when calling the Query operation (reached max "
        "retries: 9): Throughput exceeds the current capacity of your table or index. DynamoDB "
        "is automatically scaling your table or index so please try again shortly. If "
        "exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/"
        "amazondynamodb/latest/developerguide/bp-partition-key-design.html",
        None,
        {},
    ),
    (
        "AWS_THROTTLING",
        "An error occurred (ThrottlingException) when calling the DescribeTasks operation "
        "(reached max retries: 4): Rate exceeded",
        None,
        {},
    ),
    (
        "AWS_THROTTLING",
        "An error occurred (SlowDown) when calling the PutObject operation (reached max "
        "retries: 4): Please reduce your request rate.",
        None,
        {},
    ),
    (
        "AWS_THROTTLING",
        "botocore.errorfactory.TooManyRequestsException: An error occurred "
        "(TooManyRequestsException) when calling the Invoke operation (reached max retries: 4): "
        "Rate Exceeded.",
        None,
        {},
    ),
    (
        "AWS_THROTTLING",
        '{"error": "Lambda.TooManyRequestsException", "cause": "Rate Exceeded. (Service: '
        "AWSLambda; Status Code: 429; Error Code: TooManyRequestsException; Request ID: "
        f'{LAMBDA_REQUEST}; Proxy: null)"}}',
        None,
        {},
    ),
    (
        "AWS_THROTTLING",
        "An error occurred (RequestLimitExceeded) when calling the RunInstances operation "
        "(reached max retries: 4): Request limit exceeded.",
        None,
        {},
    ),
    # ---- permissions and credentials ---------------------------------------------------------
    (
        "EXPIRED_CREDENTIALS",
        "botocore.exceptions.ClientError: An error occurred (ExpiredTokenException) when "
        "calling the AssumeRole operation: The security token included in the request is "
        "expired",
        None,
        {},
    ),
    (
        "EXPIRED_CREDENTIALS",
        "An error occurred (ExpiredToken) when calling the GetObject operation: The provided "
        "token has expired.",
        None,
        {},
    ),
    (
        "EXPIRED_CREDENTIALS",
        "An error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation: "
        "The security token included in the request is invalid.",
        None,
        {},
    ),
    (
        "EXPIRED_CREDENTIALS",
        "An error occurred (RequestExpired) when calling the DescribeInstances operation: "
        "Request has expired.",
        None,
        {},
    ),
    (
        "MISSING_CREDENTIALS",
        "botocore.exceptions.NoCredentialsError: Unable to locate credentials",
        None,
        {},
    ),
    (
        "MISSING_CREDENTIALS",
        "com.amazonaws.SdkClientException: Unable to load AWS credentials from any provider in "
        "the chain: [EnvironmentVariableCredentialsProvider: Unable to load AWS credentials "
        "from environment variables (AWS_ACCESS_KEY_ID (or AWS_ACCESS_KEY) and AWS_SECRET_KEY "
        "(or AWS_SECRET_ACCESS_KEY)), SystemPropertiesCredentialsProvider: Unable to load AWS "
        "credentials from Java system properties (aws.accessKeyId and aws.secretKey)]",
        None,
        {},
    ),
    (
        "MISSING_CREDENTIALS",
        "CredentialsProviderError: Could not load credentials from any providers",
        None,
        {},
    ),
    (
        "ACCESS_DENIED",
        "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the "
        "GetObject operation: " + IAM_DENIED,
        None,
        {},
    ),
    (
        "ACCESS_DENIED",
        "An error occurred (AccessDenied) when calling the GetObject operation: Access Denied",
        None,
        {},
    ),
    (
        "ACCESS_DENIED",
        "An error occurred (AccessDeniedException) when calling the Decrypt operation: User: "
        "arn:aws:sts::123456789012:assumed-role/etl/worker is not authorized to perform: "
        "kms:Decrypt on resource: arn:aws:kms:us-east-1:123456789012:key/"
        "1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows the "
        "kms:Decrypt action",
        None,
        {},
    ),
    (
        "ACCESS_DENIED",
        "An error occurred (UnauthorizedOperation) when calling the RunInstances operation: You "
        "are not authorized to perform this operation. Encoded authorization failure message: "
        "4GIOHlTkIaWHQD0Q0m6XSnuUMCm-abc",
        None,
        {},
    ),
    # A secret ECS cannot read for lack of IAM is a permission fix, not a task-config one.
    (
        "ACCESS_DENIED",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve secret from asm: service call has been "
        "retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/"
        "ecsTaskExecutionRole/4f9d is not authorized to perform: secretsmanager:GetSecretValue "
        "on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf "
        "because no identity-based policy allows the secretsmanager:GetSecretValue action",
        None,
        {},
    ),
    # So is an image ECS cannot pull because the execution role may not read from ECR.
    (
        "ACCESS_DENIED",
        "CannotPullContainerError: AccessDeniedException: User: arn:aws:sts::123456789012:"
        "assumed-role/ecsTaskExecutionRole/4f9d is not authorized to perform: "
        "ecr:GetAuthorizationToken on resource: * status code: 400, request id: "
        "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
        None,
        {},
    ),
    # ---- ECS task start problems -------------------------------------------------------------
    (
        "ECS_IMAGE_PULL_FAILED",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to "
        "resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/etl-worker:v42: "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/etl-worker:v42: not found",
        None,
        {},
    ),
    (
        "ECS_IMAGE_PULL_FAILED",
        "CannotPullContainerError: ref pull has been retried 5 time(s): failed to copy: "
        'httpReadSeeker: failed open: failed to do request: Get "https://prod-us-east-1-'
        'starport-layer-bucket.s3.us-east-1.amazonaws.com/sha256/ab12": dial tcp '
        "52.216.0.1:443: i/o timeout",
        None,
        {},
    ),
    # Docker's "pull access denied" means the repository name is wrong, not IAM.
    (
        "ECS_IMAGE_PULL_FAILED",
        "CannotPullContainerError: Error response from daemon: pull access denied for "
        "etl-worker, repository does not exist or may require 'docker login': denied: "
        "requested access to the resource is denied",
        None,
        {},
    ),
    (
        "ECS_RESOURCE_INITIALIZATION",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve ecr registry auth: service call has been "
        "retried 3 time(s): RequestError: send request failed caused by: Post "
        '"https://api.ecr.us-east-1.amazonaws.com/": dial tcp 52.46.145.12:443: i/o timeout. '
        "Please check your task network configuration.",
        None,
        {},
    ),
    (
        "ECS_RESOURCE_INITIALIZATION",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve secret from asm: service call has been "
        "retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:"
        "123456789012:secret:prod/db-AbCdEf from secrets manager: RequestCanceled: request "
        "context canceled caused by: context deadline exceeded. Please check your task network "
        "configuration.",
        None,
        {},
    ),
    (
        "ECS_RESOURCE_INITIALIZATION",
        "ResourceInitializationError: failed to validate logger args: create stream has been "
        "retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: "
        "The specified log group does not exist. : exit status 1",
        None,
        {},
    ),
    (
        "ECS_HEALTH_CHECK_FAILED",
        "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:"
        "123456789012:targetgroup/etl-api/0123456789abcdef)",
        None,
        {},
    ),
    ("ECS_HEALTH_CHECK_FAILED", "Task failed container health checks", None, {}),
    ("ECS_ESSENTIAL_CONTAINER_EXITED", "Essential container in task exited", None, {}),
    (
        "ECS_ESSENTIAL_CONTAINER_EXITED",
        "Task arn:aws:ecs:us-east-1:123456789012:task/data-prod/0a1b2c3d4e5f stopped: "
        "Essential container in task exited",
        K.EXIT_NONZERO,
        {},
    ),
    # ---- Step Functions / Lambda service -----------------------------------------------------
    (
        "LAMBDA_SERVICE_ERROR",
        '{"error": "Lambda.ServiceException", "cause": "null (Service: AWSLambda; Status Code: '
        f'500; Error Code: ServiceException; Request ID: {LAMBDA_REQUEST}; Proxy: null)"}}',
        None,
        {},
    ),
    (
        "LAMBDA_SERVICE_ERROR",
        '{"error": "Lambda.SdkClientException", "cause": "Unable to execute HTTP request: '
        'Connect to lambda.us-east-1.amazonaws.com:443 failed: connect timed out"}',
        None,
        {},
    ),
    (
        "AWS_THROTTLING",
        '{"error": "Lambda.EC2ThrottledException", "cause": "Lambda was throttled by Amazon EC2 '
        "during Lambda function initialization using the execution role provided for the "
        'function."}',
        None,
        {},
    ),
    (
        "STATES_DATA_LIMIT_EXCEEDED",
        '{"error": "States.DataLimitExceeded", "cause": "The state/task \'arn:aws:lambda:'
        "us-east-1:123456789012:function:orders-transform' returned a result with a size "
        'exceeding the maximum number of bytes service limit."}',
        None,
        {},
    ),
    (
        "STATES_RUNTIME",
        '{"error": "States.Runtime", "cause": "An error occurred while executing the state '
        "'Transform' (entered at the event id #7). The JSONPath '$.detail.bucket' specified "
        "for the field 'Bucket.$' could not be found in the input '{}'\"}",
        None,
        {},
    ),
    (
        "STATES_TASK_FAILED",
        '{"error": "States.TaskFailed", "cause": "{\\"JobName\\":\\"orders-etl\\",'
        '\\"JobRunState\\":\\"FAILED\\",\\"ErrorMessage\\":\\"Command failed with exit code '
        '1\\"}"}',
        None,
        {},
    ),
    # ---- network -----------------------------------------------------------------------------
    (
        "NETWORK_CONNECTION_RESET",
        "ConnectionResetError: [Errno 104] Connection reset by peer",
        None,
        {},
    ),
    (
        "NETWORK_CONNECTION_RESET",
        "requests.exceptions.ConnectionError: ('Connection aborted.', "
        "ConnectionResetError(104, 'Connection reset by peer'))",
        None,
        {},
    ),
    (
        "NETWORK_CONNECTION_RESET",
        "requests.exceptions.ConnectionError: ('Connection aborted.', "
        "RemoteDisconnected('Remote end closed connection without response'))",
        None,
        {},
    ),
    ("NETWORK_CONNECTION_RESET", "BrokenPipeError: [Errno 32] Broken pipe", None, {}),
    ("NETWORK_CONNECTION_RESET", "Error: read ECONNRESET", None, {}),
    (
        "NETWORK_CONNECTION_RESET",
        "Connection was closed before we received a valid response from endpoint URL: "
        '"https://s3.us-east-1.amazonaws.com/b/k".',
        None,
        {},
    ),
    (
        "NETWORK_CONNECTION_REFUSED",
        "ConnectionRefusedError: [Errno 111] Connection refused",
        None,
        {},
    ),
    (
        "NETWORK_CONNECTION_REFUSED",
        "requests.exceptions.ConnectionError: HTTPConnectionPool(host='localhost', port=8080): "
        "Max retries exceeded with url: /health (Caused by NewConnectionError('<urllib3."
        "connection.HTTPConnection object at 0x7f3a2c1d9e50>: Failed to establish a new "
        "connection: [Errno 111] Connection refused'))",
        None,
        {},
    ),
    (
        "NETWORK_CONNECTION_REFUSED",
        'psycopg2.OperationalError: connection to server at "10.0.3.17", port 5432 failed: '
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
        "connections?",
        None,
        {},
    ),
    ("NETWORK_CONNECTION_REFUSED", "Error: connect ECONNREFUSED 127.0.0.1:5432", None, {}),
    (
        "NETWORK_DNS_FAILURE",
        "socket.gaierror: [Errno -3] Temporary failure in name resolution",
        None,
        {},
    ),
    (
        "NETWORK_DNS_FAILURE",
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.partner.example', "
        "port=443): Max retries exceeded with url: /v1/orders (Caused by NameResolutionError("
        '"<urllib3.connection.HTTPSConnection object at 0x7f9b8c0d1e20>: Failed to resolve '
        "'api.partner.example' ([Errno -2] Name or service not known)\"))",
        None,
        {},
    ),
    (
        "NETWORK_DNS_FAILURE",
        "socket.gaierror: [Errno 8] nodename nor servname provided, or not known",
        None,
        {},
    ),
    ("NETWORK_DNS_FAILURE", "socket.gaierror: [Errno 11001] getaddrinfo failed", None, {}),
    ("NETWORK_DNS_FAILURE", "Error: getaddrinfo ENOTFOUND api.partner.example", None, {}),
    (
        "NETWORK_ENDPOINT_UNREACHABLE",
        "botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint URL: "
        '"https://dynamodb.us-east-1.amazonaws.com/"',
        None,
        {},
    ),
    (
        "NETWORK_ENDPOINT_UNREACHABLE",
        'Could not connect to the endpoint URL: "https://s3.eu-west-1.amazonaws.com/orders-raw/'
        '2024/05/01/part-0000.parquet"',
        None,
        {},
    ),
    (
        "NETWORK_READ_TIMEOUT",
        "botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: "
        '"https://s3.us-east-1.amazonaws.com/orders-raw/part-0000.parquet"',
        None,
        {},
    ),
    (
        "NETWORK_READ_TIMEOUT",
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='api.partner.example', "
        "port=443): Read timed out. (read timeout=30)",
        None,
        {},
    ),
    (
        "NETWORK_CONNECT_TIMEOUT",
        "botocore.exceptions.ConnectTimeoutError: Connect timeout on endpoint URL: "
        '"https://sts.us-east-1.amazonaws.com/"',
        None,
        {},
    ),
    (
        "NETWORK_READ_TIMEOUT",
        'Read timeout on endpoint URL: "https://s3.us-east-1.amazonaws.com/b/k"',
        None,
        {},
    ),
    (
        "NETWORK_CONNECT_TIMEOUT",
        'Connect timeout on endpoint URL: "https://sts.us-east-1.amazonaws.com/"',
        None,
        {},
    ),
    ("NETWORK_READ_TIMEOUT", "socket.timeout: timed out", None, {}),
    ("NETWORK_CONNECT_TIMEOUT", "Error: connect ETIMEDOUT 10.0.4.12:443", None, {}),
    # ---- dependencies and data ---------------------------------------------------------------
    (
        "S3_OBJECT_MISSING",
        "botocore.errorfactory.NoSuchKey: An error occurred (NoSuchKey) when calling the "
        "GetObject operation: The specified key does not exist.",
        None,
        {},
    ),
    (
        "S3_OBJECT_MISSING",
        "An error occurred (NoSuchBucket) when calling the ListObjectsV2 operation: The "
        "specified bucket does not exist",
        None,
        {},
    ),
    (
        "S3_OBJECT_MISSING",
        "An error occurred (404) when calling the HeadObject operation: Not Found",
        None,
        {},
    ),
    (
        "DATA_SCHEMA_VALIDATION",
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for Order\namount\n"
        "  Input should be a valid number, unable to parse string as a number "
        "[type=float_parsing, input_value='12,50', input_type=str]\n"
        "    For further information visit https://errors.pydantic.dev/2.7/v/float_parsing",
        None,
        {},
    ),
    (
        "DATA_SCHEMA_VALIDATION",
        "jsonschema.exceptions.ValidationError: 'customer_id' is a required property\n\n"
        "Failed validating 'required' in schema:\n"
        "    {'type': 'object', 'required': ['customer_id', 'amount']}\n\n"
        "On instance:\n    {'amount': 12.5}",
        None,
        {},
    ),
    (
        "DATA_SCHEMA_VALIDATION",
        "ValueError: invalid literal for int() with base 10: 'N/A'",
        None,
        {},
    ),
    ("DATA_SCHEMA_VALIDATION", "ValueError: could not convert string to float: '12,50'", None, {}),
    (
        "DATA_ENCODING",
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start "
        "byte",
        None,
        {},
    ),
    (
        "DATA_ENCODING",
        "UnicodeEncodeError: 'ascii' codec can't encode character '\\xe9' in position 3: "
        "ordinal not in range(128)",
        None,
        {},
    ),
    (
        "DATA_MISSING_FIELD",
        PY_TRACEBACK + "    customer = record[\"customer_id\"]\nKeyError: 'customer_id'",
        None,
        {},
    ),
    # ---- generic process outcomes ------------------------------------------------------------
    ("LOCAL_KILLED_BY_SIGNAL", "Command was killed by signal SIGKILL", K.KILLED_BY_SIGNAL, {}),
    (
        "LOCAL_KILLED_BY_SIGNAL",
        "Command was killed by signal SIGKILL (memory limit 512 MiB, peak RSS 61.0 MiB)",
        K.KILLED_BY_SIGNAL,
        {},
    ),
    # A SIGKILL with the peak at the limit is the limit's OOM kill (issue 12: resident memory
    # enforced like a container's), whether the engine says so or only the numbers do.
    (
        "LOCAL_MEMORY_LIMIT",
        "Command was killed by signal SIGKILL (memory limit 512 MiB, peak RSS 498.2 MiB)",
        K.KILLED_BY_SIGNAL,
        {},
    ),
    (
        "LOCAL_MEMORY_LIMIT",
        "Command exited with code 137 (memory limit 128 MiB, peak RSS 128.0 MiB)",
        K.EXIT_NONZERO,
        {"memory_enforcement": "watchdog", "exit_code": 137},
    ),
    ("LOCAL_NONZERO_EXIT", "Command exited with code 3", K.EXIT_NONZERO, {}),
    (
        "LOCAL_NONZERO_EXIT",
        "Command exited with code 1\n" + PY_TRACEBACK + "RuntimeError: upstream returned 0 rows",
        K.EXIT_NONZERO,
        {},
    ),
]

# What a user is told to do first for each recognised failure (prior only, nothing learned).
EXPECTED_TOP_ACTION = {
    "LOCAL_MEMORY_LIMIT": A.INCREASE_MEMORY,
    "LOCAL_TIMEOUT": A.INCREASE_TIMEOUT,
    "SESSION_TIMEOUT": A.RETRY,
    "RUNNER_LOST": A.RETRY,
    "COMMAND_NOT_STARTED": A.FIX_CONFIGURATION,
    "ECS_OUT_OF_MEMORY": A.INCREASE_MEMORY,
    "LAMBDA_OUT_OF_MEMORY": A.INCREASE_MEMORY,
    "SPARK_EXECUTOR_MEMORY": A.INCREASE_MEMORY,
    "PYTHON_MEMORY_ERROR": A.INCREASE_MEMORY,
    "LAMBDA_TIMEOUT": A.INCREASE_TIMEOUT,
    "STATES_TIMEOUT": A.INCREASE_TIMEOUT,
    "AWS_THROTTLING": A.RETRY_WITH_BACKOFF,
    "EXPIRED_CREDENTIALS": A.FIX_PERMISSIONS,
    "MISSING_CREDENTIALS": A.FIX_PERMISSIONS,
    "ACCESS_DENIED": A.FIX_PERMISSIONS,
    "ECS_IMAGE_PULL_FAILED": A.FIX_CONFIGURATION,
    "ECS_RESOURCE_INITIALIZATION": A.FIX_CONFIGURATION,
    "ECS_HEALTH_CHECK_FAILED": A.FIX_CODE_OR_DATA,
    "ECS_ESSENTIAL_CONTAINER_EXITED": A.FIX_CODE_OR_DATA,
    "LAMBDA_SERVICE_ERROR": A.RETRY_WITH_BACKOFF,
    "STATES_DATA_LIMIT_EXCEEDED": A.FIX_CODE_OR_DATA,
    "STATES_RUNTIME": A.FIX_CONFIGURATION,
    "STATES_TASK_FAILED": A.FIX_CODE_OR_DATA,
    "NETWORK_CONNECTION_RESET": A.RETRY_WITH_BACKOFF,
    "NETWORK_CONNECTION_REFUSED": A.RETRY_WITH_BACKOFF,
    "NETWORK_DNS_FAILURE": A.RETRY_WITH_BACKOFF,
    "NETWORK_ENDPOINT_UNREACHABLE": A.RETRY_WITH_BACKOFF,
    "NETWORK_READ_TIMEOUT": A.RETRY,
    "NETWORK_CONNECT_TIMEOUT": A.RETRY_WITH_BACKOFF,
    "S3_OBJECT_MISSING": A.FIX_CODE_OR_DATA,
    "DATA_SCHEMA_VALIDATION": A.FIX_CODE_OR_DATA,
    "DATA_ENCODING": A.FIX_CODE_OR_DATA,
    "DATA_MISSING_FIELD": A.FIX_CODE_OR_DATA,
    "LOCAL_KILLED_BY_SIGNAL": A.INCREASE_MEMORY,
    "LOCAL_NONZERO_EXIT": A.ESCALATE,
}


def _example_id(index: int, example: Example) -> str:
    return f"{example[0]}-{index}"


EXAMPLE_PARAMS = [pytest.param(*ex, id=_example_id(i, ex)) for i, ex in enumerate(EXAMPLES)]


def without(*codes: str) -> Catalog:
    """The catalog minus some entries, to show what would match if they were not first."""
    return CATALOG.model_copy(
        update={"entries": [e for e in CATALOG.entries if e.error_code not in codes]}
    )


class TestRealMessages:
    # The rule layers alone (no learned model): the catalog's bare-exit entries answer only
    # after the model, which test_layers.py covers.
    @pytest.mark.parametrize(("code", "message", "kind", "facts"), EXAMPLE_PARAMS)
    def test_real_message_is_recognised(self, code, message, kind, facts):
        """Each real service message maps to its catalog entry, with that entry's category,
        transient/recoverable flags and its remediations ranked by prior."""
        result = classify(message, kind=kind, run_context=facts or None, use_model=False)
        entry = ENTRIES[code]
        assert result.error_code == code
        assert (result.category, result.transient, result.recoverable) == (
            entry.category,
            entry.transient,
            entry.recoverable,
        )
        assert result.description == entry.description
        assert [p.action for p in result.priors] == [
            a.action for a in sorted(entry.actions, key=lambda a: -a.prior)
        ]
        assert result.priors[0].action is EXPECTED_TOP_ACTION[code]

    def test_every_entry_has_a_real_example(self):
        """Adding a catalog entry without a real-world example here fails the suite."""
        assert {code for code, *_ in EXAMPLES} == set(ENTRIES)
        assert UNKNOWN not in ENTRIES

    def test_every_entry_has_an_expected_first_action(self):
        """The first suggestion is pinned for every entry, so a prior change is deliberate."""
        assert set(EXPECTED_TOP_ACTION) == set(ENTRIES)

    @pytest.mark.parametrize("entry", CATALOG.entries, ids=lambda e: e.error_code)
    def test_actions_are_listed_best_first(self, entry):
        """The catalog lists each entry's actions in the order they are suggested."""
        priors = [a.prior for a in entry.actions]
        assert priors == sorted(priors, reverse=True)


class TestContextExtraction:
    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            pytest.param(
                "Command exited with code 1 (memory limit 96 MiB, peak RSS 95.4 MiB)",
                {"memory_limit_mb": 96, "peak_rss_mb": 95.4, "exit_code": 1},
                id="local-engine-headline",
            ),
            pytest.param(
                "Unable to allocate 1.5 GiB for an array with shape (201326592,) and data type "
                "float64",
                {"required_mb": 1536.0},
                id="numpy-gib",
            ),
            pytest.param(
                "Unable to allocate 763. MiB for an array with shape (10000, 10000)",
                {"required_mb": 763.0},
                id="numpy-mib-trailing-dot",
            ),
            pytest.param("Unable to allocate 512 KiB", {"required_mb": 0.5}, id="kib"),
            pytest.param("Unable to allocate 2 TiB", {"required_mb": 2097152.0}, id="tib"),
            pytest.param("Cannot allocate 1048576 bytes", {"required_mb": 1.0}, id="bytes"),
            pytest.param(
                "Container killed by YARN for exceeding memory limits. 5.6 GB of 5.5 GB "
                "physical memory used.",
                {"used_mb": 5734.4, "container_limit_mb": 5632.0},
                id="yarn-used-and-limit",
            ),
            pytest.param(
                "REPORT RequestId: 1\tDuration: 2998.41 ms\tBilled Duration: 2999 ms\t"
                "Memory Size: 1024 MB\tMax Memory Used: 1019 MB",
                {"lambda_memory_size_mb": 1024, "lambda_max_memory_used_mb": 1019},
                id="lambda-report",
            ),
            pytest.param("Command exited with code 137", {"exit_code": 137}, id="exit-code"),
            pytest.param(
                "Essential container in task exited (exitCode: 139)",
                {"exit_code": 139},
                id="exitcode-field",
            ),
            pytest.param(
                '{"name": "etl-worker", "exitCode": 137}',
                {"exit_code": 137},
                id="exitcode-ecs-json",
            ),
            pytest.param(
                "subprocess.CalledProcessError: Command '['spark-submit', 'job.py']' returned "
                "non-zero exit status 1.",
                {"exit_code": 1},
                id="python-called-process-error",
            ),
            pytest.param(
                "Container marked as failed: container_1700000000000_0001_01_000003 on host: "
                "ip-10-0-1-12.ec2.internal. Exit status: 137. Diagnostics: Container killed on "
                "request. Exit code is 137",
                {"exit_code": 137},
                id="yarn-exit-status",
            ),
            pytest.param(
                "Task timed out after 300.00 seconds", {"timeout_seconds": 300.0}, id="lambda"
            ),
            pytest.param(
                "Command timed out after 30 seconds and was killed",
                {"timeout_seconds": 30.0},
                id="local-timeout",
            ),
            pytest.param(
                "Task arn:aws:ecs:us-east-1:123456789012:task/data-prod/0a1b2c3d stopped "
                "(cluster arn:aws:ecs:us-east-1:123456789012:cluster/data-prod, task definition "
                "arn:aws:ecs:us-east-1:123456789012:task-definition/etl-worker:42)",
                {"cluster": "data-prod", "task_definition": "etl-worker:42"},
                id="ecs-cluster-and-task-definition",
            ),
            pytest.param(
                "arn:aws:lambda:us-east-1:123456789012:function:orders-transform:live",
                {"function": "orders-transform"},
                id="lambda-function-with-alias",
            ),
            pytest.param(
                "An error occurred (AccessDenied) when calling the GetObject operation: "
                + IAM_DENIED,
                {
                    "iam_action": "s3:GetObject",
                    "iam_resource": "arn:aws:s3:::bucket/key",
                    "principal": "arn:aws:sts::123456789012:assumed-role/etl/worker",
                },
                id="iam-access-denied",
            ),
            pytest.param(
                "User: arn:aws:iam::123456789012:user/loader is not authorized to perform: "
                "dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:"
                "table/orders",
                {
                    "iam_action": "dynamodb:PutItem",
                    "iam_resource": "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
                },
                id="iam-resource-at-end",
            ),
            pytest.param(
                'Could not connect to the endpoint URL: "https://dynamodb.us-east-1.amazonaws.com/"',
                {"endpoint_url": "https://dynamodb.us-east-1.amazonaws.com/"},
                id="endpoint-url",
            ),
            pytest.param(
                "HTTPSConnectionPool(host='api.partner.example', port=443): Read timed out.",
                {"host": "api.partner.example"},
                id="host",
            ),
            pytest.param(
                PY_TRACEBACK + "KeyError: 'customer_id'",
                {"missing_key": "customer_id", "line": 42},
                id="key-error-and-line",
            ),
            pytest.param(
                '{"error": "States.DataLimitExceeded", "cause": "..."}',
                {"aws_error": "States.DataLimitExceeded"},
                id="step-functions-error",
            ),
        ],
    )
    def test_values_read_from_the_message(self, message, expected):
        """Limits, sizes (converted to MiB), codes, names and IAM details come out typed."""
        context = extract_context(CATALOG, message)
        assert {key: context.get(key) for key in expected} == expected
        for key, value in expected.items():
            assert type(context[key]) is type(value), key

    def test_classification_carries_the_context(self):
        """A classified ECS stop reason brings its cluster and task definition along."""
        result = classify(
            "Task arn:aws:ecs:us-east-1:123456789012:task/data-prod/0a1b2c3d stopped (cluster "
            "arn:aws:ecs:us-east-1:123456789012:cluster/data-prod, task definition "
            "arn:aws:ecs:us-east-1:123456789012:task-definition/etl-worker:42): "
            "OutOfMemoryError: Container killed due to memory usage"
        )
        assert result.error_code == "ECS_OUT_OF_MEMORY"
        assert result.context == {"cluster": "data-prod", "task_definition": "etl-worker:42"}

    def test_run_facts_win_over_the_text(self):
        """Facts the engine measured replace values parsed from (untrusted) text."""
        result = classify(
            "Command exited with code 1 (memory limit 96 MiB, peak RSS 95.4 MiB)\nMemoryError",
            kind=K.EXIT_NONZERO,
            run_context={"memory_limit_mb": 128, "exit_code": 1},
        )
        assert result.error_code == "LOCAL_MEMORY_LIMIT"
        assert result.context["memory_limit_mb"] == 128
        assert result.context["peak_rss_mb"] == 95.4

    def test_unparseable_number_is_skipped(self):
        """A value that matches the shape but is not a number is left out, not an error."""
        assert "required_mb" not in extract_context(CATALOG, "Unable to allocate ... GiB")

    def test_only_the_tail_of_a_huge_log_is_read_and_the_cause_is_found(self):
        """The error at the end of a very long log is still recognised."""
        noise = "INFO processed batch\n" * (MAX_CLASSIFIED_CHARS // 10)
        result = classify(noise + PY_TRACEBACK + "MemoryError")
        assert result.error_code == "PYTHON_MEMORY_ERROR"


class TestUnknown:
    @pytest.mark.parametrize(
        ("message", "kind"),
        [
            ("the flux capacitor is misaligned", None),
            ("", None),
            ("job finished with warnings", K.UNSUPPORTED),
        ],
    )
    def test_unrecognised_text_escalates(self, message, kind):
        """Unrecognised text is UNKNOWN, not transient, not recoverable, only `escalate`."""
        result = classify(message, kind=kind, use_model=False)
        assert result.error_code == UNKNOWN
        assert result.category is Category.UNKNOWN
        assert (result.transient, result.recoverable) == (False, False)
        assert [p.action for p in result.priors] == [A.ESCALATE]
        assert result.priors[0].prior <= 0.5

    def test_unknown_through_the_action_has_low_confidence(self, settings):
        """`error:classify` on unknown text offers only escalate, at no better than even odds."""
        gateway = Gateway(settings)
        result = gateway.invoke(
            getpass.getuser(), "error:classify", {"message": "the flux capacitor is misaligned"}
        ).model_dump(mode="json")
        assert result["error_code"] == UNKNOWN
        [suggestion] = result["recovery_suggestions"]
        assert suggestion["action"] == "escalate"
        assert suggestion["confidence"] <= 0.5
        assert suggestion["basis"]["observed_for"] == "none"

    def test_action_passes_the_failure_kind(self, settings):
        """`error:classify --kind timeout` classifies the engine's timeout as LOCAL_TIMEOUT."""
        gateway = Gateway(settings)
        message = "Command timed out after 30 seconds and was killed"
        result = gateway.invoke(
            getpass.getuser(), "error:classify", {"message": message, "kind": "timeout"}
        ).model_dump(mode="json")
        assert result["error_code"] == "LOCAL_TIMEOUT"
        assert result["context"]["timeout_seconds"] == 30.0
        assert result["recovery_suggestions"][0]["action"] == "increase_timeout"
        without_kind = gateway.invoke(getpass.getuser(), "error:classify", {"message": message})
        assert without_kind.error_code != "LOCAL_TIMEOUT"


SNIPPETS = [message for _, message, _, _ in EXAMPLES]


@hypothesis_settings(max_examples=300, deadline=None, database=None)
@given(
    message=st.one_of(
        st.text(max_size=400),
        st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=40)), max_size=5).map(
            "".join
        ),
    ),
    kind=st.one_of(st.none(), st.sampled_from(list(FailureKind))),
    facts=st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {},
            optional={
                "memory_limit_mb": st.integers(1, 1_000_000),
                "exit_code": st.integers(-255, 255),
            },
        ),
    ),
)
def test_any_text_gets_a_catalog_answer(message, kind, facts):
    """Arbitrary text never raises and always gets a defined code (catalog, taxonomy, the
    model's PREDICTED_* or UNKNOWN) with that code's flags, the layer that decided it, and
    suggestions from the action vocabulary, best first."""
    result = classify(message, kind=kind, run_context=facts)
    actions = [p.action for p in result.priors]
    assert actions
    assert all(isinstance(a, RecoveryAction) for a in actions)
    priors = [p.prior for p in result.priors]
    assert priors == sorted(priors, reverse=True)
    assert 0.0 <= result.confidence <= 1.0
    if result.layer is Layer.MODEL:
        assert result.error_code == f"PREDICTED_{result.category.value}"
    else:
        entry = definition(result.error_code) or UNKNOWN_ENTRY
        assert entry.error_code == result.error_code
        assert (result.layer is Layer.NONE) == (result.error_code == UNKNOWN)
        assert (result.category, result.transient, result.recoverable) == (
            entry.category,
            entry.transient,
            entry.recoverable,
        )
        assert set(actions) == {a.action for a in entry.actions}
    assert classify(message, kind=kind, run_context=facts) == result


class TestSpecificBeatsGeneral:
    @pytest.mark.parametrize(
        ("message", "kind", "facts", "specific", "general"),
        [
            pytest.param(
                '{"error": "States.TaskFailed", "cause": "{\\"errorMessage\\":\\"2024-05-01T'
                f'12:05:00.123Z {LAMBDA_REQUEST} Task timed out after 60.06 seconds\\"}}"}}',
                None,
                {},
                "LAMBDA_TIMEOUT",
                "STATES_TASK_FAILED",
                id="lambda-timeout-inside-states-task-failed",
            ),
            pytest.param(
                "Essential container in task exited. Container etl-worker: "
                "OutOfMemoryError: Container killed due to memory usage",
                K.EXIT_NONZERO,
                {},
                "ECS_OUT_OF_MEMORY",
                "ECS_ESSENTIAL_CONTAINER_EXITED",
                id="ecs-oom-not-generic-container-exit",
            ),
            pytest.param(
                "Essential container in task exited",
                K.EXIT_NONZERO,
                {},
                "ECS_ESSENTIAL_CONTAINER_EXITED",
                "LOCAL_NONZERO_EXIT",
                id="ecs-exit-not-generic-exit-code",
            ),
            pytest.param(
                PY_TRACEBACK + "MemoryError",
                K.EXIT_NONZERO,
                {"memory_limit_mb": 256},
                "LOCAL_MEMORY_LIMIT",
                "PYTHON_MEMORY_ERROR",
                id="memory-error-under-bunsui-limit",
            ),
            pytest.param(
                PY_TRACEBACK + "MemoryError",
                K.EXIT_NONZERO,
                {},
                "PYTHON_MEMORY_ERROR",
                "OUT_OF_MEMORY",
                id="memory-error-not-generic-exit",
            ),
            pytest.param(
                "Command was killed by signal SIGABRT (memory limit 128 MiB, peak RSS 127.9 MiB)"
                "\nterminate called after throwing an instance of 'std::bad_alloc'",
                K.KILLED_BY_SIGNAL,
                {},
                "LOCAL_MEMORY_LIMIT",
                "LOCAL_KILLED_BY_SIGNAL",
                id="bad-alloc-not-generic-signal",
            ),
            pytest.param(
                "ExecutorLostFailure (executor 3 exited caused by one of the running tasks) "
                "Reason: The executor with id 3 exited with exit code 137(SIGKILL, possible "
                "container OOM).",
                K.EXIT_NONZERO,
                {},
                "SPARK_EXECUTOR_MEMORY",
                "KILLED_SIGKILL",
                id="spark-137-not-generic-exit",
            ),
            pytest.param(
                '{"error": "States.TaskFailed", "cause": "An error occurred '
                "(ProvisionedThroughputExceededException) when calling the PutItem operation: "
                'The level of configured provisioned throughput for the table was exceeded."}',
                None,
                {},
                "AWS_THROTTLING",
                "STATES_TASK_FAILED",
                id="throttling-inside-states-task-failed",
            ),
            pytest.param(
                '{"error": "Lambda.AWSLambdaException", "cause": "User: arn:aws:sts::'
                "123456789012:assumed-role/StepFunctions-etl/abc is not authorized to perform: "
                "lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:123456789012:"
                "function:transform because no identity-based policy allows the "
                "lambda:InvokeFunction action (Service: AWSLambda; Status Code: 403; Error Code: "
                'AccessDeniedException)"}',
                None,
                {},
                "ACCESS_DENIED",
                "LAMBDA_SERVICE_ERROR",
                id="permission-not-transient-lambda-service-error",
            ),
            pytest.param(
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
                "<X-Amz-Expires>3600</X-Amz-Expires><Expires>2024-05-01T13:00:00Z</Expires>"
                "<ServerTime>2024-05-01T14:12:09Z</ServerTime></Error>",
                None,
                {},
                "EXPIRED_CREDENTIALS",
                "ACCESS_DENIED",
                id="expired-presigned-url-not-missing-permission",
            ),
            pytest.param(
                "CannotPullContainerError: ref pull has been retried 5 time(s): failed to copy: "
                'httpReadSeeker: failed open: failed to do request: Get "https://prod-us-east-1-'
                'starport-layer-bucket.s3.us-east-1.amazonaws.com/sha256/ab12": read tcp '
                "10.0.1.5:41234->52.216.0.1:443: read: connection reset by peer",
                None,
                {},
                "ECS_IMAGE_PULL_FAILED",
                "NETWORK_CONNECTION_RESET",
                id="image-pull-not-generic-network",
            ),
            pytest.param(
                "CannotPullContainerError: AccessDeniedException: User: arn:aws:sts::"
                "123456789012:assumed-role/ecsTaskExecutionRole/4f9d is not authorized to "
                "perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:"
                "repository/etl-worker",
                None,
                {},
                "ACCESS_DENIED",
                "ECS_IMAGE_PULL_FAILED",
                id="ecr-iam-denial-is-permission-not-image-config",
            ),
            pytest.param(
                PY_TRACEBACK + "KeyError: 'customer_id'",
                K.EXIT_NONZERO,
                {},
                "DATA_MISSING_FIELD",
                "INVALID_DATA",
                id="key-error-not-generic-exit",
            ),
        ],
    )
    def test_specific_entry_wins(self, message, kind, facts, specific, general):
        """When a specific and a general entry both match, the specific one is chosen; the
        general one really does match on its own."""
        assert classify(message, kind=kind, run_context=facts).error_code == specific
        fallback = classify(
            message, kind=kind, run_context=facts, catalog=without(specific), use_model=False
        )
        assert fallback.error_code == general


def test_a_step_functions_timeout_folded_as_a_timeout_is_states_timeout():
    """The Step Functions engine reports a TaskTimedOut as kind timeout with `States.Timeout`
    in the text: that is STATES_TIMEOUT, not the local engine's timeout kill; a local timeout
    (no States.Timeout in the text) stays LOCAL_TIMEOUT."""
    aws = classify("States.Timeout: Task timed out", kind=FailureKind.TIMEOUT)
    local = classify("Command timed out after 30 seconds", kind=FailureKind.TIMEOUT)
    assert (aws.error_code, local.error_code) == ("STATES_TIMEOUT", "LOCAL_TIMEOUT")
