package ec2sim

import (
	"fmt"
	"net/http"
)

// AWS error codes the emulator answers with. Names follow the EC2 API reference.
const (
	codeInvalidAction               = "InvalidAction"
	codeMissingParameter            = "MissingParameter"
	codeInvalidParameterValue       = "InvalidParameterValue"
	codeInvalidParameter            = "InvalidParameter"
	codeInvalidParameterCombination = "InvalidParameterCombination"
	codeInvalidAMIIDMalformed       = "InvalidAMIID.Malformed"
	codeInvalidInstanceType         = "InvalidInstanceType"
	codeInstanceNotFound            = "InvalidInstanceID.NotFound"
	codeInstanceMalformed           = "InvalidInstanceID.Malformed"
	codeInvalidInstanceID           = "InvalidInstanceID"
	codeSubnetNotFound              = "InvalidSubnetID.NotFound"
	codeVpcNotFound                 = "InvalidVpcID.NotFound"
	codeGroupNotFound               = "InvalidGroup.NotFound"
	codeGroupIDMalformed            = "InvalidGroupId.Malformed"
	codeENINotFound                 = "InvalidNetworkInterfaceID.NotFound"
	codeENIMalformed                = "InvalidNetworkInterfaceID.Malformed"
	codeAllocationNotFound          = "InvalidAllocationID.NotFound"
	codeAllocationMalformed         = "InvalidAllocationID.Malformed"
	codeAssociationNotFound         = "InvalidAssociationID.NotFound"
	codeAddressNotFound             = "InvalidAddress.NotFound"
	codeVolumeNotFound              = "InvalidVolume.NotFound"
	codeInvalidID                   = "InvalidID"
	codeIPInUse                     = "InvalidIPAddress.InUse"
	codeAlreadyAssociated           = "Resource.AlreadyAssociated"
	codePrivateIPLimitExceeded      = "PrivateIpAddressLimitExceeded"
	codeAttachmentLimitExceeded     = "AttachmentLimitExceeded"
	codeAddressLimitExceeded        = "AddressLimitExceeded"
	codeInsufficientAddresses       = "InsufficientFreeAddressesInSubnet"
	codeIncorrectInstanceState      = "IncorrectInstanceState"
	codeIdempotentMismatch          = "IdempotentParameterMismatch"
	codeTagLimitExceeded            = "TagLimitExceeded"
	codeInvalidPaginationToken      = "InvalidPaginationToken"
	codeUnsupportedOperation        = "UnsupportedOperation"
	codeRequestLimitExceeded        = "RequestLimitExceeded"
	codeInternalError               = "InternalError"
	codeValidationError             = "ValidationError" // STS
)

// apiError is an AWS error answer: a code, a message and the HTTP status AWS uses for it.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// statusFor returns the HTTP status EC2 sends with an error code: 503 for throttling and
// unavailability, 500 for internal errors, 401/403 for auth, 400 for everything else.
func statusFor(code string) int {
	switch code {
	case codeRequestLimitExceeded, "Throttling", "ThrottlingException", "ServiceUnavailable", "Unavailable":
		return http.StatusServiceUnavailable
	case codeInternalError, "InternalFailure", "InternalServerError", "InsufficientInstanceCapacity":
		return http.StatusInternalServerError
	case "AuthFailure":
		return http.StatusUnauthorized
	case "UnauthorizedOperation", "AccessDenied", "OptInRequired":
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}
