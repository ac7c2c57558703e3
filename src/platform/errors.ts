/**
 * The one registry of coded errors. Every error that crosses a boundary (wire, CLI, later SOAP/REST
 * faults) is an XrdError whose code is a key of ERROR_CODES; `docs/errors.md` lists the same table and
 * a test keeps both in step. Codes follow X-Road's `<Prefix>.<Code>[.<Sub>]` form.
 */

export interface ErrorSpec {
  /** Human text; `{name}` placeholders are filled from the error's details. */
  readonly message: string;
  /** Status an HTTP boundary reports for this code. */
  readonly httpStatus: number;
}

export const ERROR_CODES = {
  // X-Road signer codes (facts §8)
  KeyNotFound: { message: 'Key {keyId} not found', httpStatus: 404 },
  KeyNotAvailable: { message: 'Key {keyId} is not available: {reason}', httpStatus: 500 },
  TokenNotFound: { message: 'Token {tokenId} not found', httpStatus: 404 },
  TokenNotActive: { message: 'Token {tokenId} is not active (not logged in)', httpStatus: 500 },
  TokenNotInitialized: { message: 'Token {tokenId} is not initialized', httpStatus: 500 },
  TokenNotAvailable: { message: 'Token {tokenId} is not available: {reason}', httpStatus: 500 },
  TokenReadOnly: { message: 'Token {tokenId} is read-only', httpStatus: 409 },
  HSMNonOperational: { message: 'PKCS#11 module {module} is not operational: {reason}', httpStatus: 500 },
  PinIncorrect: { message: 'PIN incorrect for token {tokenId}', httpStatus: 401 },
  PinLocked: { message: 'PIN locked for token {tokenId}', httpStatus: 403 },
  PinFinalTry: { message: 'PIN incorrect for token {tokenId}; one more wrong PIN locks it', httpStatus: 401 },
  PinInvalid: { message: 'PIN does not meet the requirements of token {tokenId}: {reason}', httpStatus: 400 },
  LoginFailed: { message: 'Login to token {tokenId} failed: {reason}', httpStatus: 500 },
  CannotSign: { message: 'Cannot sign with key {keyId}: {reason}', httpStatus: 500 },
  UnsupportedSignAlgorithm: { message: 'Unsupported signature algorithm {algorithm} for key {keyId}', httpStatus: 400 },
  UnsupportedKeyAlgorithm: { message: 'Token {tokenId} cannot generate {keyAlgorithm} keys: {reason}', httpStatus: 400 },
  InvalidDigestLength: {
    message: 'Digest for {algorithm} must be {expected} bytes, got {actual}',
    httpStatus: 400,
  },
  InvalidSignatureValue: { message: 'Signature is not valid: {reason}', httpStatus: 400 },
  CertNotFound: { message: 'Certificate {hash} not found', httpStatus: 404 },
  CertAlreadyExists: { message: 'Certificate {hash} is already imported', httpStatus: 409 },
  IncorrectCertificate: { message: 'Incorrect certificate: {reason}', httpStatus: 400 },
  WrongCertUsage: { message: 'Certificate cannot be used for {usage}: {reason}', httpStatus: 400 },
  CsrNotFound: { message: 'CSR {csrId} not found', httpStatus: 404 },
  UnknownMember: { message: '{reason}', httpStatus: 404 },
  InvalidIdentifier: { message: 'Invalid identifier {value}: {reason}', httpStatus: 400 },
  // Certificate validation (MESS_12–15); the message is the reference's own text
  CannotCreateCertPath: { message: 'Cannot create certificate path for {subject}: {reason}', httpStatus: 500 },
  InvalidCertPath: { message: 'Invalid certificate path for {subject}: {reason}', httpStatus: 500 },
  CertValidityTime: { message: 'Certificate {subject} is not valid at {at} (valid from {notBefore} to {notAfter})', httpStatus: 500 },
  IncorrectValidationInfo: { message: '{reason}', httpStatus: 500 },
  CertValidation: { message: '{reason}', httpStatus: 500 },
  // Message signatures, hash chains and timestamps (MESS_08, MESS_11); an outer code such as
  // MalformedSignature may wrap an inner one: MalformedSignature.InvalidHashChainRef
  SignatureVerification: { message: 'Signature verification failed: {reason}', httpStatus: 500 },
  MalformedSignature: { message: 'Malformed signature: {reason}', httpStatus: 500 },
  MissingSignature: { message: 'Message has no signature', httpStatus: 500 },
  InvalidReference: { message: 'Invalid reference {uri}: {reason}', httpStatus: 500 },
  CannotCreateSignature: { message: 'Cannot create signature: {reason}', httpStatus: 500 },
  MalformedHashChain: { message: 'Malformed hash chain: {reason}', httpStatus: 500 },
  InvalidHashChain: { message: 'Invalid hash chain: {reason}', httpStatus: 500 },
  InvalidHashChainRef: { message: 'Invalid hash chain reference {uri}: {reason}', httpStatus: 500 },
  HashChainUnusedInputs: { message: 'Some inputs were not used by the hash chain: {inputs}', httpStatus: 500 },
  MissingValidationInfo: { message: 'Missing validation information: {reason}', httpStatus: 500 },
  TimestampValidation: { message: 'Timestamp is not valid: {reason}', httpStatus: 500 },
  TimestampingFailed: { message: 'Timestamping failed: {reason}', httpStatus: 500 },
  SigningCertificateNotBound: { message: 'The signed properties do not bind the signing certificate: {reason}', httpStatus: 500 },
  MalformedContainer: { message: 'Malformed ASiC container: {reason}', httpStatus: 400 },
  // ASiC container loading, as the reference's AsicContainer reports it
  AsicMimeTypeNotFound: { message: '{entry} not found or is empty', httpStatus: 400 },
  AsicInvalidMimeType: { message: 'Invalid mime type: {mimeType}', httpStatus: 400 },
  AsicMessageNotFound: { message: '{entry} not found or is empty', httpStatus: 400 },
  AsicSignatureNotFound: { message: '{entry} not found or is empty', httpStatus: 400 },
  AsicHashChainResultNotFound: { message: '{entry} not found or is empty', httpStatus: 400 },
  AsicHashChainNotFound: { message: '{entry} not found or is empty', httpStatus: 400 },
  AsicTimestampNotFound: { message: '{entry} not found or is empty', httpStatus: 400 },
  AsicManifestNotFound: { message: '{entry} not found or is empty', httpStatus: 400 },
  AsicUnexpectedEntry: { message: 'Entry {entry} is not part of an X-Road ASiC container: {reason}', httpStatus: 400 },
  // ZIP archives (src/platform/zip.ts); a container reports them under MalformedContainer
  ZipMalformed: { message: 'Malformed ZIP archive: {reason}', httpStatus: 400 },
  ZipUnsupported: { message: 'ZIP archive uses {feature}, which is not supported', httpStatus: 400 },
  ZipDuplicateEntry: { message: 'ZIP archive has two entries named {entry} and {other}', httpStatus: 400 },
  ZipHeaderMismatch: { message: 'ZIP entry {entry}: its local header and the central directory disagree on {field}', httpStatus: 400 },
  ZipOverlappingEntries: { message: 'ZIP entries {entry} and {other} overlap', httpStatus: 400 },
  ZipUnexpectedData: { message: 'ZIP archive has {length} bytes at offset {offset} that belong to no entry: {reason}', httpStatus: 400 },
  ZipLimitExceeded: { message: 'ZIP archive exceeds a limit: {reason}', httpStatus: 413 },
  ZipTooLarge: { message: '{what} needs ZIP64, which is not written (limit {limit})', httpStatus: 413 },
  ZipSourceChanged: { message: 'ZIP entry {entry} changed while it was written: {reason}', httpStatus: 500 },
  // Message log (MESS_09–10); as 7.x reports a refusal: LoggingFailed.TimestamperFailed
  LoggingFailed: { message: 'Logging failed: {reason}', httpStatus: 500 },
  TimestamperFailed: { message: 'Cannot time-stamp messages: {reason}', httpStatus: 500 },
  NotFound: { message: '{reason}', httpStatus: 404 },
  MissingTimestamp: { message: 'Message signature has not been timestamped yet: {reason}', httpStatus: 409 },
  // Message-log archives (src/messagelog/archive-*.ts, docs/messagelog.md "Archiving"); the reference's InvalidLogArchiveException
  LogArchiveInvalid: { message: 'Message log archive {file} is invalid: {reason}', httpStatus: 400 },
  LogArchivePreviousDigestMismatch: { message: 'Message log archive {file} follows an archive whose last digest is {inArchive}, not the {given} given', httpStatus: 400 },
  LogArchiveDigestMismatch: { message: 'Message log archive {file}: the chain digest of {entry} is {actual}, not the {expected} its linkinginfo gives (a container altered, removed or reordered)', httpStatus: 400 },
  LogArchiveEncryptionFailed: { message: 'Encrypting message log archive {file} with GnuPG failed: {reason}', httpStatus: 500 },
  LogArchiverBusy: { message: 'Another archiver is working on message log {file} (lease held until {until})', httpStatus: 409 },
  // Global configuration (facts §7)
  OutdatedGlobalConf: { message: 'Global configuration of {instance} expired at {expiredAt}', httpStatus: 500 },
  MalformedGlobalConf: { message: 'Malformed global configuration {file}: {reason}', httpStatus: 500 },
  // Downloading global configuration (pr-gconf §2.6), 7.8's global_conf_* codes in CamelCase
  GlobalConfDownloadUrlConnectionFailure: { message: 'Cannot download configuration from {url}: {reason}', httpStatus: 502 },
  GlobalConfGetVersionFailed: { message: 'Cannot find the configuration version {url} serves: {reason}', httpStatus: 502 },
  GlobalConfParsingDownloadedConfDirectoryFailure: { message: 'Cannot parse the configuration directory from {url}: {reason}', httpStatus: 500 },
  GlobalConfHeaderFieldMissing: { message: 'Configuration directory of {instance} lacks the header field {field}', httpStatus: 500 },
  GlobalConfHeaderFieldMissingParameter: { message: 'Header field {field} in the configuration directory of {instance} lacks parameter {parameter}', httpStatus: 500 },
  GlobalConfHeaderFieldWrongValue: { message: 'Header field {field} in the configuration directory of {instance} cannot be "{value}": {reason}', httpStatus: 500 },
  GlobalConfMissingSignedData: { message: 'Configuration directory of {instance} has no signed data', httpStatus: 500 },
  GlobalConfMissingSignedDataExpirationDate: { message: 'Configuration directory of {instance} has no signed expiration date', httpStatus: 500 },
  GlobalConfMissingVerificationCert: { message: 'Cannot verify the configuration of {instance}: no verification certificate with hash {hash}', httpStatus: 500 },
  GlobalConfSignatureDecodeFailure: { message: 'Cannot decode the signature of the configuration of {instance}', httpStatus: 500 },
  GlobalConfSignatureVerificationFailure: { message: 'Signature of the configuration of {instance} is not valid', httpStatus: 500 },
  GlobalConfPartDownloadFailure: { message: 'Cannot download configuration part {location} from {url}: {reason}', httpStatus: 502 },
  GlobalConfPartDownloadedFileIntegrityFailure: { message: 'Configuration part {location} does not match its hash in the directory', httpStatus: 500 },
  GlobalConfPartInvalidInstanceIdentifier: { message: 'Configuration part {location} is for instance {actual}, not {expected} as the directory says', httpStatus: 500 },
  GlobalConfPartFileSaveFailure: { message: 'Cannot save configuration part to {file}: {reason}', httpStatus: 500 },
  // Signer daemon protocol
  MalformedRequest: { message: 'Malformed request: {reason}', httpStatus: 400 },
  UnsupportedVersion: { message: 'Unsupported protocol version {version}', httpStatus: 400 },
  UnknownOperation: { message: 'Unknown operation {op}', httpStatus: 400 },
  FrameTooLarge: { message: 'Frame of {size} bytes exceeds the limit of {limit}', httpStatus: 413 },
  RequestTimeout: { message: 'Request did not complete within {timeoutMs} ms', httpStatus: 504 },
  Busy: { message: 'Too many requests waiting for token {tokenId}', httpStatus: 503 },
  AlreadyRunning: { message: 'Another signer daemon is listening on {socketPath}', httpStatus: 409 },
  OperationNotAllowed: { message: 'Operation {op} is not allowed on the signer\'s {socket} socket', httpStatus: 403 },
  TooManyConnections: { message: 'The signer\'s {socket} socket already has {limit} connections', httpStatus: 503 },
  IdleConnectionClosed: { message: 'The signer closed the connection after {seconds} s without a request', httpStatus: 503 },
  // Message processing in the proxies (MESS_02–07, MESS_04); names as the reference's ErrorCodes
  SslAuthenticationFailed: { message: '{reason}', httpStatus: 401 },
  InvalidContentType: { message: 'Invalid content type: {contentType}', httpStatus: 400 },
  InvalidHttpMethod: { message: 'Must use POST request method instead of {method}', httpStatus: 405 },
  InvalidSoap: { message: 'Malformed SOAP message: {reason}', httpStatus: 400 },
  MissingHeaderField: { message: 'Required field \'{field}\' is missing', httpStatus: 400 },
  DuplicateHeaderField: { message: '{where} contains duplicate field \'{field}\'', httpStatus: 400 },
  InvalidProtocolVersion: { message: 'Unsupported protocol version: {version}', httpStatus: 400 },
  InvalidClientIdentifier: { message: '{reason}', httpStatus: 400 },
  InvalidRequest: { message: '{reason}', httpStatus: 400 },
  MessageTooLarge: { message: 'Message of more than {limit} bytes refused', httpStatus: 413 },
  UnknownService: { message: '{reason}', httpStatus: 404 },
  AccessDenied: { message: 'Request is not allowed: {service}', httpStatus: 403 },
  ServiceFailed: { message: 'Service {service} failed: {reason}', httpStatus: 502 },
  InconsistentResponse: { message: 'Response from the service does not match the request: {reason}', httpStatus: 500 },
  InvalidSecurityServer: { message: '{reason}', httpStatus: 500 },
  MissingHeader: { message: 'Malformed SOAP message: header missing', httpStatus: 400 },
  MissingBody: { message: 'Malformed SOAP message: body missing', httpStatus: 400 },
  InvalidBody: { message: 'Malformed SOAP message: body must have exactly one child element', httpStatus: 400 },
  InconsistentHeaders: { message: 'Malformed SOAP message: {reason}', httpStatus: 400 },
  InvalidXml: { message: '{reason}', httpStatus: 400 },
  InvalidSoapAction: { message: 'Malformed SOAPAction header', httpStatus: 400 },
  ServiceType: { message: '{reason}', httpStatus: 400 },
  ServiceDisabled: { message: 'Service {service} is disabled: {notice}', httpStatus: 503 },
  MaintenanceMode: { message: '{reason}', httpStatus: 503 },
  ClientProxyVersionNotSupported: { message: 'The minimum supported version for client security server is: {version}', httpStatus: 400 },
  HttpError: { message: 'Received HTTP error: {status} - {reason}', httpStatus: 502 },
  UnknownHost: { message: 'Unknown host {host}', httpStatus: 502 },
  // The format between security servers (pr-messtransp §3.1), names as the reference's ErrorCodes
  InvalidMessage: { message: 'Invalid message: {reason}', httpStatus: 400 },
  MimeParsingFailed: { message: 'MIME parsing failed: {reason}', httpStatus: 400 },
  MissingSoap: { message: '{message} does not have SOAP message', httpStatus: 400 },
  MissingRest: { message: '{message} does not have REST message', httpStatus: 400 },
  // Administration (docs/admin-api.md): initialisation, timestamping services, clients, registration
  ServerAlreadyInitialized: { message: 'Security server is already initialised as {serverId}', httpStatus: 409 },
  ServerNotInitialized: { message: 'Security server is not initialised (POST /api/v1/initialization or xrd server init)', httpStatus: 409 },
  GlobalConfNotAvailable: { message: 'Global configuration is not available: {reason}', httpStatus: 409 },
  TimestampingServiceNotApproved: { message: 'Timestamping service {name} ({url}) is not approved in global configuration', httpStatus: 400 },
  TimestampingServiceExists: { message: 'Timestamping service {url} is already configured', httpStatus: 409 },
  TimestampingServiceNotFound: { message: 'Timestamping service {url} is not configured', httpStatus: 404 },
  ClientNotFound: { message: 'Client {clientId} is not a client of this security server', httpStatus: 404 },
  TlsCertificateExists: { message: 'TLS certificate {hash} is already added', httpStatus: 409 },
  TlsCertificateNotFound: { message: 'TLS certificate {hash} not found', httpStatus: 404 },
  CertStateInvalid: { message: 'Certificate {hash} cannot be used so: {reason}', httpStatus: 409 },
  // The server's internal TLS certificate and configuration anchor (docs/admin-api.md)
  InternalTlsKeyMismatch: { message: 'Certificate {hash} is not for the internal TLS key (make a CSR for the key and import its certificate)', httpStatus: 400 },
  InvalidDistinguishedName: { message: 'Invalid distinguished name: {reason}', httpStatus: 400 },
  AnchorNotFound: { message: 'No configuration anchor: {reason}', httpStatus: 404 },
  AnchorAlreadyExists: { message: 'A configuration anchor is already in place (PUT /system/anchor replaces it)', httpStatus: 409 },
  MalformedAnchor: { message: 'Not a configuration anchor: {reason}', httpStatus: 400 },
  InvalidAnchorInstance: { message: 'The anchor is for instance {anchorInstance}, this server is in {instance}', httpStatus: 400 },
  AnchorUploadFailed: { message: 'The configuration anchor cannot be saved to {file}: {reason}', httpStatus: 500 },
  // Service descriptions (docs/services.md), names as the reference's admin API error codes
  InvalidWsdl: { message: 'Invalid WSDL: {reason}', httpStatus: 400 },
  WsdlDownloadFailed: { message: 'Cannot download the WSDL from {url}: {reason}', httpStatus: 400 },
  OpenapiParsingError: { message: 'Cannot read the OpenAPI description {url}: {reason}', httpStatus: 400 },
  UnsupportedOpenapiVersion: { message: 'OpenAPI version {version} not supported (3.0.x and 3.1.0 are)', httpStatus: 400 },
  ServiceCodeReserved: { message: 'Service code {code} is reserved for a metaservice', httpStatus: 400 },
  // Admin REST API (docs/admin-api.md "Security")
  AddressNotAllowed: { message: 'Requests from {address} are not allowed', httpStatus: 403 },
  ApiKeyMissing: { message: 'An API key is required: Authorization: X-Road-ApiKey token=KEY', httpStatus: 401 },
  ApiKeyInvalid: { message: 'The API key is malformed, unknown or revoked', httpStatus: 401 },
  PermissionDenied: { message: '{principal} may not call {route}; roles allowed: {roles}', httpStatus: 403 },
  RateLimited: { message: 'Too many requests from {address}; retry after {retryAfter} s', httpStatus: 429 },
  RateLimitedOverall: { message: 'Too many requests from all clients together; retry after {retryAfter} s', httpStatus: 429 },
  RequestTooLarge: { message: 'Request body exceeds the limit of {limit} bytes', httpStatus: 413 },
  UnsupportedMediaType: { message: 'Unsupported content type {contentType}', httpStatus: 415 },
  WarningsDetected: { message: 'Warnings detected (ignore_warnings to go on): {warnings}', httpStatus: 400 },
  InvalidRequestBody: { message: 'Request body is not valid: {reason}', httpStatus: 400 },
  RouteNotFound: { message: 'No route {method} {url}', httpStatus: 404 },
  AdminUiNotBuilt: { message: 'The web interface is not built ({dir} has no index.html): run npm run build:ui', httpStatus: 503 },
  ApiKeyNotFound: { message: 'API key {id} not found', httpStatus: 404 },
  InvalidApiKeyRoles: { message: 'Invalid roles for an API key: {reason}', httpStatus: 400 },
  // Users and sessions of the admin API (docs/admin-api.md "Users and sessions")
  InvalidCredentials: { message: 'Wrong user name or password', httpStatus: 401 },
  AccountLocked: { message: 'User {name} is locked after {failures} wrong passwords; retry after {retryAfter} s', httpStatus: 403 },
  SessionExpired: { message: 'The session has ended (logged out, idle too long or past its lifetime); log in again', httpStatus: 401 },
  SessionRequired: { message: '{route} needs a logged-in user: an API key cannot call it', httpStatus: 403 },
  CsrfTokenInvalid: { message: 'A change made in a session needs the session\'s CSRF token in the X-XSRF-TOKEN header', httpStatus: 403 },
  UserNotFound: { message: 'User {name} not found', httpStatus: 404 },
  UserExists: { message: 'User {name} already exists', httpStatus: 409 },
  InvalidUser: { message: 'Invalid user: {reason}', httpStatus: 400 },
  // Server configuration changes (src/serverconf/changes.ts); details.referenceCode is the reference's code
  SameAddressChangeRequest: { message: 'Global configuration already gives this server the address {address}', httpStatus: 409 },
  InvalidMemberClass: { message: 'Member class {memberClass} is not one of global configuration', httpStatus: 400 },
  InvalidInstanceIdentifier: { message: "Client instance {instance} is not this security server's instance", httpStatus: 400 },
  ClientAlreadyExists: { message: 'Client {clientId} already exists on this security server', httpStatus: 409 },
  AdditionalMemberAlreadyExists: { message: 'Member {clientId} is already on this security server besides the owner; a server holds at most one other member', httpStatus: 409 },
  CannotDeleteOwner: { message: 'Client {clientId} owns this security server and cannot be deleted', httpStatus: 409 },
  ActionNotPossible: { message: 'Action not possible: {reason}', httpStatus: 409 },
  CannotRegisterOwner: { message: 'Client {clientId} owns this security server and is registered with it', httpStatus: 400 },
  CannotUnregisterOwner: { message: 'Client {clientId} owns this security server and cannot be unregistered', httpStatus: 409 },
  MemberAlreadyOwner: { message: 'Member {clientId} already owns this security server', httpStatus: 400 },
  ForbiddenDisableManagementServiceClient: { message: 'Client {clientId} provides the management services and cannot be disabled', httpStatus: 409 },
  InvalidConnectionType: { message: 'Connection type {connectionType} is not one of {allowed}', httpStatus: 400 },
  MalformedUrl: { message: 'URL {url} is not an http or https URL with a valid host', httpStatus: 400 },
  ServiceDescriptionNotFound: { message: 'Service description {id} not found', httpStatus: 404 },
  WsdlExists: { message: 'The client already has a service description at {url}', httpStatus: 409 },
  InvalidWsdlServiceIdentifier: { message: 'The WSDL names services with invalid identifiers: {identifiers}', httpStatus: 400 },
  ServiceAlreadyExists: { message: 'Services already exist in other descriptions of the client: {services}', httpStatus: 409 },
  InvalidServiceUrl: { message: 'Service URLs in the WSDL are not http or https: {urls}', httpStatus: 400 },
  UrlAlreadyExists: { message: 'The client already has a service description at {url}', httpStatus: 409 },
  ServiceCodeAlreadyExists: { message: 'Service codes already exist for the client: {services}', httpStatus: 409 },
  MissingParameter: { message: 'Missing parameter {parameter}', httpStatus: 400 },
  WrongServiceDescriptionType: { message: 'Service description {id} is {actual}, not {expected}', httpStatus: 400 },
  ServiceNotFound: { message: 'Service {service} of client {clientId} not found', httpStatus: 404 },
  InvalidHttpsUrl: { message: 'TLS authentication needs an https URL, not {url}', httpStatus: 400 },
  EndpointNotFound: { message: 'Endpoint {endpoint} not found', httpStatus: 404 },
  EndpointAlreadyExists: { message: 'Endpoint {endpoint} already exists for this service', httpStatus: 409 },
  IllegalGeneratedEndpointUpdate: { message: 'Endpoint {endpoint} comes from the service description and cannot be changed', httpStatus: 400 },
  IllegalGeneratedEndpointRemove: { message: 'Endpoint {endpoint} comes from the service description and cannot be deleted', httpStatus: 400 },
  InvalidServiceClientId: { message: 'Service client {subject} is not a subsystem, global group or local group', httpStatus: 400 },
  ServiceClientNotFound: { message: 'Service client {subject} not found', httpStatus: 400 },
  DuplicateAccessRight: { message: '{subject} already has access to {endpoint}', httpStatus: 409 },
  AccessRightNotFound: { message: '{subject} has no access to {endpoint}', httpStatus: 404 },
  LocalGroupNotFound: { message: 'Local group {code} of client {clientId} not found', httpStatus: 404 },
  LocalGroupCodeAlreadyExists: { message: 'Local group {code} already exists for the client', httpStatus: 409 },
  LocalGroupMemberNotFound: { message: '{member} is not a known client or not a member of local group {code}', httpStatus: 404 },
  LocalGroupMemberAlreadyExists: { message: '{member} is already a member of local group {code}', httpStatus: 409 },
  // Management requests (pr-mserv): the security server's side and the test PKI's central-server stand-in;
  // the central server's refusals name the reference's ErrorMessage code in brackets
  ManagementRequestFailed: { message: 'Management request to {url} failed: {reason}', httpStatus: 502 },
  AuthCertAlreadyRegistered: { message: 'Authentication certificate {hash} is already registered for security server {server}', httpStatus: 409 },
  ManagementRequestExists: { message: 'Management request {id} for the same change is already pending', httpStatus: 409 },
  SecurityServerNotFound: { message: 'Security server {server} not found (management_request_server_not_found)', httpStatus: 409 },
  OwnerNotRegistrableAsClient: { message: "The security server's owner {client} cannot be registered as its client (management_request_cannot_register_owner)", httpStatus: 400 },
  ClientAlreadyRegistered: { message: 'Client {client} is already registered on security server {server} (management_request_client_already_registered)', httpStatus: 409 },
  ClientRegistrationNotFound: { message: 'Client {client} is not registered on security server {server} and no registration is pending (management_request_client_registration_not_found)', httpStatus: 404 },
  OwnerMustBeMember: { message: 'The new owner {client} must be a member, not a subsystem (management_request_owner_must_be_member)', httpStatus: 400 },
  OwnerMustBeClient: { message: 'The new owner {client} must be a registered client of security server {server} (management_request_owner_must_be_client)', httpStatus: 400 },
  ClientAlreadyOwner: { message: '{client} already owns security server {server} (management_request_client_already_owner)', httpStatus: 400 },
  ServerCodeExists: { message: '{client} already owns a security server with code {serverCode} (management_request_server_code_exists)', httpStatus: 409 },
  InvalidAuthCertificate: { message: 'Authentication certificate {hash} is neither registered nor waiting for registration on security server {server} (management_request_invalid_auth_certificate)', httpStatus: 409 },
  ServerClientNotFound: { message: '{client} is not a client of security server {server} (management_request_server_client_not_found)', httpStatus: 409 },
  ManagementServiceClientCannotBeDisabled: { message: 'The management service provider {client} cannot be disabled (mr_forbidden_disable_management_service_client)', httpStatus: 409 },
  ManagementServiceMaintenanceForbidden: { message: 'Security server {server} hosts the management service provider {client} and cannot enter maintenance mode (mr_forbidden_enable_maintenance_mode_for_management_service)', httpStatus: 409 },
  ServerAlreadyInMaintenanceMode: { message: 'Security server {server} is already in maintenance mode (management_request_server_already_in_maintenance_mode)', httpStatus: 409 },
  ServerNotInMaintenanceMode: { message: 'Security server {server} is not in maintenance mode (management_request_server_not_in_maintenance_mode)', httpStatus: 409 },
  ManagementRequestNotFound: { message: 'Management request {id} not found', httpStatus: 404 },
  ManagementRequestNotPending: { message: 'Management request {id} is {status}, not SUBMITTED', httpStatus: 409 },
  // Backup and restore (docs/backup.md)
  BackupCorrupt: { message: 'Backup {file} cannot be used: {reason}', httpStatus: 400 },
  BackupRefused: { message: 'Restore refused: {reason}', httpStatus: 409 },
  BackupRestoreFailed: { message: 'Restore of {file} failed: {reason}', httpStatus: 500 },
  BackupUnsigned: { message: 'Backup {file} is not signed: {reason}', httpStatus: 400 },
  BackupSignatureInvalid: { message: 'Backup {file} is not signed by this server: {reason}', httpStatus: 400 },
  BackupNeedsStoppedSigner: { message: 'Backup {file} cannot be restored while the server runs: {reason}. Stop the signer and run `xrd backup restore` (docs/backup.md); nothing was restored', httpStatus: 409 },
  BackupNotFound: { message: 'Backup {name} not found', httpStatus: 404 },
  InvalidBackupFilename: { message: 'Invalid backup file name {name}: letters, digits, ".", "_" and "-", starting with a letter, digit or "_", ending .tar.gz or .tgz', httpStatus: 400 },
  // Generic
  InvalidConfiguration: { message: 'Invalid configuration: {reason}', httpStatus: 500 },
  IOError: { message: 'I/O error: {reason}', httpStatus: 500 },
  NetworkError: { message: 'Cannot reach {target}: {reason}', httpStatus: 502 },
  // Outgoing calls (src/platform/http-client.ts, docs/security.md "Outgoing calls")
  ResponseTimeout: { message: 'No complete answer from {target} within {timeoutMs} ms', httpStatus: 504 },
  ResponseTooLarge: { message: 'Answer from {target} exceeds the limit of {limit} bytes', httpStatus: 502 },
  InternalError: { message: 'Internal error: {reason}', httpStatus: 500 },
  // A SQLite file (message log, server configuration, op-monitor data) written by a newer version
  DatabaseTooNew: { message: "Database {file}: schema version {found} is newer than this program's {supported}", httpStatus: 500 },
  // A store's database (SQLite file or PostgreSQL, src/storage) that cannot be opened or answered
  DatabaseUnavailable: { message: 'Database {location} is not available: {reason}', httpStatus: 503 },
  // What a token handed back that the signer cannot read (an EC point, a signature)
  UnreadableTokenObject: { message: 'The token returned {what} the signer cannot read: {reason}', httpStatus: 500 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;
export type ErrorDetails = Record<string, string | number | boolean | undefined>;

/** Fault-code prefix: which component raised the error (facts §8). */
export type FaultPrefix = 'Signer' | 'Server.ClientProxy' | 'Server.ServerProxy' | 'Client';

export class XrdError extends Error {
  override readonly name = 'XrdError';

  constructor(
    readonly code: ErrorCode,
    readonly details: ErrorDetails = {},
    options: { cause?: unknown; prefix?: FaultPrefix; outerCodes?: readonly ErrorCode[] } = {},
  ) {
    super(formatMessage(ERROR_CODES[code].message, details), { cause: options.cause });
    this.prefix = options.prefix ?? 'Signer';
    this.outerCodes = options.outerCodes ?? [];
  }

  readonly prefix: FaultPrefix;
  /** Codes this error was reported under, outermost first (the reference's `withPrefix`). */
  readonly outerCodes: readonly ErrorCode[];

  /** The same error reported under `outer`, e.g. InvalidHashChainRef → MalformedSignature.InvalidHashChainRef. */
  within(outer: ErrorCode): XrdError {
    return new XrdError(this.code, this.details, { cause: this.cause, prefix: this.prefix, outerCodes: [outer, ...this.outerCodes] });
  }

  /** The same error reported by another component (the reference's `withPrefix`). */
  withPrefix(prefix: FaultPrefix): XrdError {
    return new XrdError(this.code, this.details, { cause: this.cause, prefix, outerCodes: this.outerCodes });
  }

  /** The code with its outer codes and without the component prefix, e.g. `MalformedSignature.InvalidHashChainRef`. */
  get fullCode(): string {
    return [...this.outerCodes, this.code].join('.');
  }

  /** The dotted X-Road fault code, e.g. `Signer.KeyNotFound`. */
  get faultCode(): string {
    return `${this.prefix}.${this.fullCode}`;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].httpStatus;
  }
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

function formatMessage(template: string, details: ErrorDetails): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => String(details[name] ?? `<${name}>`));
}

/** Wraps anything thrown into an XrdError, keeping the original as `cause`. */
export function toXrdError(err: unknown): XrdError {
  if (err instanceof XrdError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new XrdError('InternalError', { reason }, { cause: err });
}

/** 7.8's snake_case codes whose CamelCase form is not the mechanical one. */
const IRREGULAR_SNAKE_CASE: Record<string, ErrorCode> = {
  io_error: 'IOError',
  hashchain_unused_inputs: 'HashChainUnusedInputs',
  global_conf_outdated: 'OutdatedGlobalConf',
  hsm_non_operational: 'HSMNonOperational',
};
const PREFIXES: Record<string, FaultPrefix> = { 'server.clientproxy': 'Server.ClientProxy', 'server.serverproxy': 'Server.ServerProxy', client: 'Client', signer: 'Signer' };

/**
 * A fault code from a peer in either form — `Server.ClientProxy.SslAuthenticationFailed` or 7.8's
 * `server.clientproxy.ssl_authentication_failed` — in the CamelCase form we emit. Parts that are not
 * codes we know (e.g. a peer's own sub-codes) are kept, converted the mechanical way.
 */
export function normalizeFaultCode(code: string): string {
  const lower = code.toLowerCase();
  const prefixKey = Object.keys(PREFIXES).find((p) => lower === p || lower.startsWith(`${p}.`));
  // A code that is neither X-Road's nor in 7.8's form (a service's own `soap:Server`) is left as it came.
  if (!prefixKey && !/^[a-z0-9_.]+$/.test(code)) return code;
  const rest = prefixKey ? code.slice(prefixKey.length + 1) : code;
  const parts = rest === '' ? [] : rest.split('.').map((part) => {
    if (!part.includes('_') && /^[A-Z]/.test(part)) return part;
    if (IRREGULAR_SNAKE_CASE[part]) return IRREGULAR_SNAKE_CASE[part];
    return part.split('_').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
  });
  return [...(prefixKey ? [PREFIXES[prefixKey]!] : []), ...parts].join('.');
}
