"""Portico's Python runtime client: the process Portico starts in every Python execution
environment (`python -u bootstrap.py`, cwd = LAMBDA_TASK_ROOT).

It behaves like AWS's own client (awslambdaric): the same handler resolution, error names
and documents, context object, log format and exit behaviour, over the Lambda Runtime API
at AWS_LAMBDA_RUNTIME_API. Standard library only (Python 3.8 or later); this file is
embedded into the Portico binary.
"""

import decimal
import http.client
import importlib
import json
import logging
import math
import os
import socket
import sys
import time
import traceback

RUNTIME_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# AWS's text log format writes an error's lines as one record: lines joined with a
# carriage return, leading spaces turned into no-break spaces.
ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_IDENT = "\u00a0"
UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. To determine if the runtime has been updated, check the "
    "runtime version in the INIT_START log entry. If this error correlates with a change in the "
    "runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)


class FaultException(Exception):
    """An error of the runtime itself, with AWS's `Runtime.*` type."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


# ---------------------------------------------------------------------------------------
# Loading the handler, with AWS's errors.


def get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME, "Bad handler '{}': {}".format(handler, e))
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        # "pkg/mod.handler" and "pkg.mod.handler" name the same module.
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR, "Unable to import module '{}': {}".format(modname, e)
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR, "Syntax error in module '{}': {}".format(modname, e), trace
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND, "Handler '{}' missing on module '{}'".format(fname, modname)
        )


# ---------------------------------------------------------------------------------------
# Error documents and how they are logged.


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def user_frames(tb):
    """The traceback's frames from the first one outside this file on."""
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if "/bootstrap.py" not in frame[0]:
            return frames[i:]
    return frames


def error_from_exception(exc_info, invoke_id=None):
    etype, value, tb = exc_info
    return make_error(str(value), etype.__name__, traceback.format_list(user_frames(tb)), invoke_id)


def replace_line_indentation(line, indent_char, new_indent_char):
    count = len(line) - len(line.lstrip(indent_char))
    return new_indent_char * count + line[count:]


def log_error(error):
    description = "[ERROR]"
    if error.get("errorType"):
        description += " " + error["errorType"]
    if error.get("errorMessage"):
        if error.get("errorType"):
            description += ":"
        description += " " + error["errorMessage"]
    lines = [description]
    stack_trace = error.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
            else:
                for line in element.splitlines():
                    lines.append(replace_line_indentation(line, " ", ERROR_LOG_IDENT))
    sys.stdout.write(ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


# ---------------------------------------------------------------------------------------
# Output: unbuffered, so every record is in the pipe before the outcome is posted.


class Unbuffered:
    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        self.stream.write(msg)
        self.stream.flush()

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


current_request_id = None


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = current_request_id or ""
        return True


class LambdaLoggerHandler(logging.Handler):
    """The root logger's handler: one record, one line. Newlines inside a record become
    carriage returns (as the Node.js client does), so a traceback stays one record."""

    def emit(self, record):
        try:
            msg = self.format(record)
            body = msg[:-1] if msg.endswith("\n") else msg
            sys.stdout.write(body.replace("\n", "\r") + "\n")
        except Exception:
            self.handleError(record)


def setup_logging():
    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    # Like AWS: the root logger keeps Python's WARNING level unless the function's
    # logging configuration (AWS_LAMBDA_LOG_LEVEL) sets one; TRACE is DEBUG here.
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    level = {None: "", "TRACE": "DEBUG"}.get(level, level).upper()
    if level in logging._nameToLevel:
        root.setLevel(level)
    root.addHandler(handler)


# ---------------------------------------------------------------------------------------
# Events and responses.


class Encoder(json.JSONEncoder):
    def __init__(self):
        # AWS's python3.12 and later runtimes write non-ASCII characters as they are;
        # earlier ones escape them.
        env = os.environ.get("AWS_EXECUTION_ENV", "")
        modern = env.startswith("AWS_Lambda_python3.") and env[len("AWS_Lambda_python3.") :].isdigit()
        modern = modern and int(env[len("AWS_Lambda_python3.") :]) >= 12
        super().__init__(ensure_ascii=not modern)

    def default(self, obj):
        if isinstance(obj, decimal.Decimal):
            return math.nan if obj.is_nan() else float(obj)
        return super().default(obj)


def unmarshal_request(body, content_type):
    if content_type != "application/json":
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(e))


def marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return Encoder().encode(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException(FaultException.MARSHAL_ERROR, "Unable to marshal response: {}".format(e))


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id={},cognito_identity_pool_id={}])".format(
            self.cognito_identity_id, self.cognito_identity_pool_id
        )


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __repr__(self):
        return "Client([{}])".format(",".join("{}={}".format(f, getattr(self, f)) for f in self.__slots__))


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom={},env={},client={}])".format(self.custom, self.env, self.client)


def make_obj_from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, values.get(field, None))
    return obj


class LambdaContext:
    """The handler's second argument, with awslambdaric's attributes."""

    def __init__(self, invoke_id, client_context, cognito_identity, epoch_deadline_time_in_ms, invoked_function_arn):
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = None
        self.client_context = make_obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = make_obj_from_dict(Client, self.client_context.client)
        self.identity = make_obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id={},log_group_name={},log_stream_name={},function_name={},"
            "memory_limit_in_mb={},function_version={},invoked_function_arn={},client_context={},"
            "identity={},tenant_id={}])"
        ).format(
            self.aws_request_id,
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
            self.invoked_function_arn,
            self.client_context,
            self.identity,
            self.tenant_id,
        )


def parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR, "Unable to parse {} JSON: {}".format(name, e)
        )


# ---------------------------------------------------------------------------------------
# The Runtime API: one kept-alive connection for the invocation loop.


# Portico's extension of the Runtime API (see RuntimeClient).
THEN_NEXT_HEADER = "Portico-Then-Next"


class RuntimeClient:
    def __init__(self, address, inherited_fd=None):
        self.address = address
        self.conn = http.client.HTTPConnection(address)
        # Started so, the client talks to Portico, whose Runtime API answers an outcome
        # posted with THEN_NEXT_HEADER with the next invocation (as GET /next would)
        # instead of a 202: per invocation one request and one answer.
        self.then_next = inherited_fd is not None
        # That answer, until wait_next_invocation takes it.
        self.next_answer = None
        if inherited_fd is not None:
            # Portico's first connection, ready-made: one end of a UNIX socket pair (a
            # fraction of loopback TCP's cost per message). A reconnection uses the address.
            self.conn.sock = socket.socket(fileno=inherited_fd)

    def request(self, method, path, body=None, headers=None):
        """One request on the kept-alive connection; a connection the server closed
        while idle is replaced once."""
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return response.status, response.getheaders(), response.read()
            except (ConnectionError, http.client.BadStatusLine, http.client.CannotSendRequest):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.address)
                if attempt:
                    raise

    def wait_next_invocation(self):
        answer, self.next_answer = self.next_answer, None
        status, headers, body = answer or self.request("GET", RUNTIME_PREFIX + "/invocation/next")
        if status == 410:
            # The environment is being stopped.
            sys.exit(0)
        if status != 200:
            raise RuntimeError("Failed to get next invocation: HTTP {}: {!r}".format(status, body))
        return {k.lower(): v for k, v in headers}, body

    def post(self, path, body, headers, then_next=False):
        """Posts to the Runtime API; with `then_next` (an outcome, to Portico) an answer
        that is the next invocation is kept for wait_next_invocation."""
        then_next = then_next and self.then_next
        if then_next:
            headers = dict(headers, **{THEN_NEXT_HEADER: "1"})
        status, answer_headers, answer = self.request("POST", path, body=body, headers=headers)
        if then_next and status in (200, 410):
            self.next_answer = (status, answer_headers, answer)
            return
        if status != 202:
            sys.stdout.write(
                "[ERROR]\tRequest to Lambda Runtime '{}' endpoint failed. Reason: '{}'. Response body: '{}'\n".format(
                    path, status, answer.decode("utf-8", "replace")
                )
            )

    def post_invocation_result(self, invoke_id, result, content_type):
        self.post(
            RUNTIME_PREFIX + "/invocation/" + invoke_id + "/response",
            result,
            {"Content-Type": content_type},
            then_next=True,
        )

    def post_invocation_error(self, invoke_id, error):
        self.post(
            RUNTIME_PREFIX + "/invocation/" + invoke_id + "/error",
            Encoder().encode(error).encode("utf-8"),
            {"Content-Type": "application/json", ERROR_TYPE_HEADER: header_safe(error["errorType"])},
            then_next=True,
        )

    def post_init_error(self, error):
        self.post(
            RUNTIME_PREFIX + "/init/error",
            Encoder().encode(error).encode("utf-8"),
            {"Content-Type": "application/json", ERROR_TYPE_HEADER: header_safe(error["errorType"])},
        )


def header_safe(value):
    # Header values must be visible ASCII; the JSON body always carries the full type.
    return "".join(c if " " <= c <= "~" else "?" for c in str(value))


def handle_event_request(client, request_handler, headers, body):
    global current_request_id
    invoke_id = headers.get("lambda-runtime-aws-request-id", "")
    current_request_id = invoke_id
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    error = None
    try:
        client_context = headers.get("lambda-runtime-client-context")
        cognito_identity = headers.get("lambda-runtime-cognito-identity")
        context = LambdaContext(
            invoke_id,
            parse_json_header(client_context, "Client Context") if client_context else None,
            parse_json_header(cognito_identity, "Cognito Identity") if cognito_identity else None,
            int(headers.get("lambda-runtime-deadline-ms", "0")),
            headers.get("lambda-runtime-invoked-function-arn"),
        )
        event = unmarshal_request(body, headers.get("content-type"))
        response = request_handler(event, context)
        result, content_type = marshal_response(response)
    except FaultException as e:
        error = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        error = error_from_exception(sys.exc_info(), invoke_id)
    if error is not None:
        log_error(error)
        client.post_invocation_error(invoke_id, error)
    else:
        client.post_invocation_result(invoke_id, result, content_type)


def sandbox_failure(message):
    print(message)
    sys.exit(1)


def python_path_entries():
    """PYTHONPATH's directories as the interpreter put them on sys.path at start: absolute,
    an empty one meaning the working directory, an empty variable meaning none."""
    value = os.environ.get("PYTHONPATH")
    return [os.path.abspath(p) for p in value.split(os.pathsep)] if value else []


def json_object(body, failure):
    """`body` as a JSON object, or the end of this process with `failure` and the reason.
    The reasons name no values: an environment may hold the function's secrets."""
    try:
        answer = json.loads(body)
    except ValueError as e:
        sandbox_failure("{}: not JSON: {}".format(failure, e))
    if not isinstance(answer, dict):
        sandbox_failure("{}: not a JSON object".format(failure))
    return answer


def await_sandbox(client):
    """Waits for Portico's word that the sandbox is complete. A spare environment, started
    before its function was known, is told it is one: it then waits for its assignment,
    whose task root is returned."""
    status, _, body = client.request("GET", RUNTIME_PREFIX + "/portico/sandbox")
    if status != 200:
        sandbox_failure("The sandbox is not ready: HTTP status {}: {}".format(status, body.decode("utf-8", "replace")))
    answer = json_object(body, "The sandbox answer is malformed")
    spare = answer.get("spare", False)
    if not isinstance(spare, bool):
        sandbox_failure("The sandbox answer is malformed: spare is not a boolean")
    if not spare:
        return None
    warm_up()
    return await_assignment(client)


def warm_up():
    """Does ahead of the assignment what the way from it to the function's first invocation
    would otherwise do for the first time, with no effect the function could see. The
    modules that way uses are all imported by now; but the first compilation of source in
    a process sets up the interpreter's syntax tree types (1 to 2 ms), which the first
    import of the function's module would pay when it has no up-to-date .pyc."""
    compile("def handler(event, context):\n    return event\n", "<portico-warm-up>", "exec", dont_inherit=True)


def await_assignment(client):
    """Waits for a spare's function: its environment and task root, which the process takes
    on exactly as if it had been started with them. Returns the task root."""
    status, _, body = client.request("GET", RUNTIME_PREFIX + "/portico/assignment")
    if status != 200:
        # An error's body is Portico's own error document, never the function's environment.
        sandbox_failure("The assignment failed: HTTP status {}: {}".format(status, body.decode("utf-8", "replace")))
    assignment = json_object(body, "The assignment is malformed")
    environment = assignment.get("environment")
    if not isinstance(environment, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in environment.items()
    ):
        sandbox_failure("The assignment is malformed: environment is not an object of strings")
    task_root = assignment.get("taskRoot")
    if not isinstance(task_root, str) or not os.path.isabs(task_root):
        sandbox_failure("The assignment is malformed: taskRoot is not an absolute path")
    spare_python_path = python_path_entries()
    # Exactly the function's environment: nothing of the spare's own start may remain.
    os.environ.clear()
    try:
        os.environ.update(environment)
    except ValueError as e:
        sandbox_failure("The assignment is malformed: environment: {}".format(e))
    try:
        os.chdir(task_root)
    except OSError as e:
        sandbox_failure("The assignment is unusable: taskRoot: {}".format(e.strerror))
    # What the interpreter took from the spare's environment at start, taken again from
    # the function's: PYTHONPATH's directories (after the script's) and the time zone.
    python_path = python_path_entries()
    if python_path != spare_python_path:
        rest = [p for p in sys.path[1:] if p not in spare_python_path and p not in python_path]
        sys.path[1:] = python_path + rest
    time.tzset()
    return task_root


def main():
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)
    # Resolved before an assignment may change the working directory.
    runtime_dir = os.path.dirname(os.path.abspath(__file__))
    inherited = os.environ.pop("_PORTICO_RUNTIME_API_FD", "")
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"], int(inherited) if inherited.isdigit() else None)
    task_root = None
    # Portico may still be completing this environment's sandbox (joining its cgroups
    # while Python started), or may not yet know its function (a spare, which then waits
    # for its assignment): no function code runs until it says it is done. Nothing is
    # written before: it would be no function's output.
    if os.environ.pop("_PORTICO_AWAIT_SANDBOX", None) is not None:
        task_root = await_sandbox(client)
    # From here on the environment is the function's: everything taken from it is taken now.
    # The function's own modules come first, as on Lambda (the task root heads sys.path).
    task_root = task_root or os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    if sys.path and os.path.abspath(sys.path[0] or ".") == runtime_dir:
        sys.path[0] = task_root
    else:
        sys.path.insert(0, task_root)
    setup_logging()
    try:
        request_handler = get_handler(os.environ.get("_HANDLER", ""))
    except Exception as e:
        if isinstance(e, FaultException):
            error = make_error(e.msg, e.exception_type, e.trace)
        else:
            error = error_from_exception(sys.exc_info())
        logging.warning(UNHANDLED_WARNING)
        log_error(error)
        client.post_init_error(error)
        sys.exit(1)
    while True:
        headers, body = client.wait_next_invocation()
        handle_event_request(client, request_handler, headers, body)


if __name__ == "__main__":
    main()
