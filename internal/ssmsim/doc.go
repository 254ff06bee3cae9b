// Package ssmsim is an in-process emulator of AWS Systems Manager Parameter
// Store, with the fake KMS behind its SecureString parameters and the IAM
// checks in front of both, so that the commands' secret references
// (internal/secret) and the modules' instance policies can be tested offline
// through the real aws-sdk-go-v2 SSM client.
//
// A Server is an http.Handler speaking the JSON 1.1 protocol: POST with
// X-Amz-Target: AmazonSSM.<Operation> and Content-Type
// application/x-amz-json-1.1, answers in the same content type, errors as
// {"__type": code, "message": text} with the code also in X-Amzn-ErrorType,
// which the SDK turns into its typed errors (types.ParameterNotFound,
// types.AccessDeniedException, ...). Start serves it on a loopback port of
// its own (URL, Close); New makes one to mount elsewhere, such as beside
// ec2sim in the local cloud, where instances find it through
// AWS_ENDPOINT_URL_SSM.
//
// # What it models
//
//   - GetParameter (Name, name:version selectors, the ARN form of a name,
//     WithDecryption), GetParameters (1 to 10 names; unknown ones in
//     InvalidParameters), PutParameter (Type String, StringList or
//     SecureString, KeyId, Overwrite, Description, AllowedPattern, Tags,
//     Tier, DataType text) and DeleteParameter.
//   - Parameter Store's rules: name characters, fully qualified
//     hierarchies of at most 15 levels, no aws/ssm prefix, 4 KB values in
//     the Standard tier and 8 KB in Advanced (no downgrade), a type that
//     cannot change, ParameterAlreadyExists without Overwrite, tags not with
//     Overwrite, 100 versions kept, Config.MaxParameters.
//   - SecureString with a fake KMS: values are sealed with AES-256-GCM under
//     a per-key secret, bound to the parameter's ARN (the PARAMETER_ARN
//     encryption context). What the emulator holds at rest, and what
//     GetParameter answers without WithDecryption, is that ciphertext. The
//     AWS managed key alias/aws/ssm is made on first use; CreateKey adds
//     customer managed keys.
//   - Access control. Each request's SigV4 access key ID names a Principal
//     (SetPrincipal, or Config.Authenticate) whose Policy is an IAM policy
//     document (ParsePolicy): Allow and Deny statements with actions and
//     resources with IAM's wildcards, and StringEquals/StringLike (and their
//     negations) conditions. Operations need ssm:GetParameter,
//     ssm:GetParameters, ssm:PutParameter or ssm:DeleteParameter on the
//     parameter's ARN (arn:aws:ssm:<region>:<account>:parameter/<name>);
//     IAM decides before the lookup, so a denied caller learns nothing about
//     existence. Decrypting needs kms:Decrypt (writing kms:Encrypt) on the
//     key's ARN with the context keys kms:ViaService
//     (ssm.<region>.amazonaws.com), kms:CallerAccount and
//     kms:EncryptionContext:PARAMETER_ARN; the managed key's own key policy
//     allows the account, so for it only an explicit Deny stops decryption,
//     as in AWS.
//   - Errors as Parameter Store sends them: ParameterNotFound,
//     ParameterVersionNotFound, ParameterAlreadyExists,
//     ParameterLimitExceeded, HierarchyLevelLimitExceededException,
//     HierarchyTypeMismatchException, ParameterPatternMismatchException,
//     InvalidAllowedPatternException, InvalidKeyId, ValidationException,
//     AccessDeniedException, UnrecognizedClientException (an unknown access
//     key), MissingAuthenticationTokenException (an unsigned request),
//     UnknownOperationException and SerializationException (a malformed or
//     unknown member; the emulator is strict so that a client sending what
//     it would ignore fails loudly). FailNext injects any code (say
//     ThrottlingException, which the SDK's standard retryer retries).
//
// # Simplifications compared with Parameter Store
//
//   - One account and region; signatures are not checked (only the access
//     key ID is read); no resource policies, permission boundaries or
//     session policies; conditions only on the keys listed above.
//   - No labels (a label selector is ParameterVersionNotFound), parameter
//     policies, tags beyond accepting them at creation, DescribeParameters,
//     GetParametersByPath, parameter history or public parameters. String
//     values are not checked against the aws:ec2:image data type (only
//     text is accepted).
//   - No throughput limits: ThrottlingException comes only from FailNext.
//   - Messages are close to AWS's but not byte-identical; match on codes.
package ssmsim
