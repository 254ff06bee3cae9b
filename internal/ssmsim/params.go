package ssmsim

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Parameter types.
const (
	TypeString       = "String"
	TypeStringList   = "StringList"
	TypeSecureString = "SecureString"
)

// Tiers and their value limits.
const (
	TierStandard            = "Standard"
	TierAdvanced            = "Advanced"
	TierIntelligentTiering  = "Intelligent-Tiering"
	maxStandardValue        = 4096
	maxAdvancedValue        = 8192
	maxVersions             = 100
	maxNameLength           = 1011
	maxHierarchyLevels      = 15
	maxGetParametersNames   = 10
	maxDescriptionLength    = 1024
	maxAllowedPatternLength = 1024
)

type parameter struct {
	name           string
	typ            string
	tier           string
	description    string
	allowedPattern string
	dataType       string
	versions       []version // oldest first, at most maxVersions
}

type version struct {
	number   int64
	value    string // plaintext, or for SecureString the ciphertext
	keyID    string // SecureString only
	modified time.Time
}

func (p *parameter) latest() version { return p.versions[len(p.versions)-1] }

// Parameter is a snapshot of a stored parameter, for tests.
type Parameter struct {
	Name, Type, Tier string
	Version          int64
	// KeyID is the KMS key a SecureString is encrypted with.
	KeyID string
	// Stored is the latest value as held at rest: for a SecureString the
	// ciphertext, never the plaintext.
	Stored string
}

// Parameter returns a snapshot of the parameter name.
func (s *Server) Parameter(name string) (Parameter, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.params[name]
	if !ok {
		return Parameter{}, false
	}
	v := p.latest()
	return Parameter{Name: p.name, Type: p.typ, Tier: p.tier, Version: v.number, KeyID: v.keyID, Stored: v.value}, true
}

// Names lists the stored parameter names, sorted.
func (s *Server) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.params))
	for n := range s.params {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Keys lists the keys of the fake KMS.
func (s *Server) Keys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Wire shapes of the four operations (JSON 1.1, member names as in the
// Parameter Store API).
type (
	getParameterInput struct {
		Name           string `json:"Name"`
		WithDecryption *bool  `json:"WithDecryption"`
	}
	getParameterOutput struct {
		Parameter *parameterOut `json:"Parameter"`
	}
	getParametersInput struct {
		Names          []string `json:"Names"`
		WithDecryption *bool    `json:"WithDecryption"`
	}
	getParametersOutput struct {
		Parameters        []*parameterOut `json:"Parameters"`
		InvalidParameters []string        `json:"InvalidParameters"`
	}
	putParameterInput struct {
		Name           string  `json:"Name"`
		Description    string  `json:"Description"`
		Value          *string `json:"Value"`
		Type           string  `json:"Type"`
		KeyID          string  `json:"KeyId"`
		Overwrite      *bool   `json:"Overwrite"`
		AllowedPattern string  `json:"AllowedPattern"`
		Tags           []struct {
			Key   string `json:"Key"`
			Value string `json:"Value"`
		} `json:"Tags"`
		Tier     string `json:"Tier"`
		Policies string `json:"Policies"`
		DataType string `json:"DataType"`
	}
	putParameterOutput struct {
		Version int64  `json:"Version"`
		Tier    string `json:"Tier"`
	}
	deleteParameterInput struct {
		Name string `json:"Name"`
	}
	parameterOut struct {
		ARN              string  `json:"ARN"`
		DataType         string  `json:"DataType"`
		LastModifiedDate float64 `json:"LastModifiedDate"`
		Name             string  `json:"Name"`
		Selector         string  `json:"Selector,omitempty"`
		Type             string  `json:"Type"`
		Value            string  `json:"Value"`
		Version          int64   `json:"Version"`
	}
)

var nameChars = regexp.MustCompile(`^[a-zA-Z0-9_./-]+$`)

// checkName applies Parameter Store's naming rules.
func checkName(name string) error {
	switch {
	case name == "":
		return errorf(codeValidation, "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	case len(name) > maxNameLength:
		return errorf(codeValidation, "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to %d", maxNameLength)
	case !nameChars.MatchString(name):
		return errorf(codeValidation, "Parameter name: can't contain characters other than letters, numbers, '.', '-', '_' and '/'")
	case strings.Contains(name, "/") && !strings.HasPrefix(name, "/"):
		return errorf(codeValidation, "Parameter name must be a fully qualified name.")
	case strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
		return errorf(codeValidation, "Parameter name must not end with '/' or hold an empty path segment.")
	}
	first := strings.ToLower(strings.TrimPrefix(name, "/"))
	if strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return errorf(codeValidation, "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).")
	}
	if strings.Count(name, "/") > maxHierarchyLevels {
		return errorf(codeHierarchyLevelLimit, "A hierarchy can have a maximum of %d levels.", maxHierarchyLevels)
	}
	return nil
}

// splitSelector parses "name", "name:3" (a version) or "name:label", and
// the ARN form of a name in this account and region.
func (s *Server) splitSelector(ref string) (name, selector string, err error) {
	if rest, ok := strings.CutPrefix(ref, "arn:"); ok {
		prefix := "aws:ssm:" + s.cfg.Region + ":" + s.cfg.AccountID + ":parameter/"
		after, ok := strings.CutPrefix(rest, prefix)
		if !ok {
			// Another account's or region's parameter: not shared with this one.
			return "", "", errorf(codeParameterNotFound, "Parameter %s not found.", ref)
		}
		ref = after
		if strings.Contains(strings.SplitN(ref, ":", 2)[0], "/") {
			ref = "/" + ref
		}
	}
	name, sel, hasSel := strings.Cut(ref, ":")
	if err := checkName(name); err != nil {
		return "", "", err
	}
	if hasSel {
		if sel == "" {
			return "", "", errorf(codeValidation, "Parameter selector must not be empty.")
		}
		selector = ":" + sel
	}
	return name, selector, nil
}

func (s *Server) arn(name string) string { return parameterARN(s.cfg.Region, s.cfg.AccountID, name) }

// versionFor picks the version a selector names.
func (p *parameter) versionFor(selector string) (version, error) {
	if selector == "" {
		return p.latest(), nil
	}
	n, err := strconv.ParseInt(selector[1:], 10, 64)
	if err != nil {
		// Labels (LabelParameterVersion) are not modeled: no label exists.
		return version{}, errorf(codeParameterVersionNotFound, "Systems Manager could not find label %s of parameter %s.", selector[1:], p.name)
	}
	for _, v := range p.versions {
		if v.number == n {
			return v, nil
		}
	}
	return version{}, errorf(codeParameterVersionNotFound, "Systems Manager could not find version %d of %s. Verify the version and try again.", n, p.name)
}

// readLocked answers one parameter for GetParameter(s): authorization of
// action first (as IAM runs before the lookup, a denied caller cannot tell
// whether the parameter exists), then the lookup, then decryption.
func (s *Server) readLocked(pr Principal, action, ref string, decrypt bool) (*parameterOut, error) {
	name, selector, err := s.splitSelector(ref)
	if err != nil {
		return nil, err
	}
	arn := s.arn(name)
	if err := s.authorizeLocked(pr, action, arn, nil); err != nil {
		return nil, err
	}
	p, ok := s.params[name]
	if !ok {
		return nil, errorf(codeParameterNotFound, "Parameter %s not found.", name)
	}
	v, err := p.versionFor(selector)
	if err != nil {
		return nil, err
	}
	value := v.value
	if p.typ == TypeSecureString && decrypt {
		k, ok := s.keys[v.keyID]
		if !ok {
			return nil, errorf(codeInvalidKeyID, "The KMS key of parameter %s no longer exists.", name)
		}
		if err := s.authorizeKMSLocked(pr, "kms:Decrypt", k, arn); err != nil {
			return nil, err
		}
		id, rest, err := keyIDOf(v.value)
		if err != nil || id != k.id {
			return nil, errorf(codeInternalServerError, "stored ciphertext of %s is damaged", name)
		}
		if value, err = k.decrypt(rest, arn); err != nil {
			return nil, errorf(codeInternalServerError, "%s: %v", name, err)
		}
	}
	return &parameterOut{
		ARN: arn, DataType: p.dataType, Name: name, Selector: selector, Type: p.typ, Value: value, Version: v.number,
		LastModifiedDate: float64(v.modified.UnixMilli()) / 1000,
	}, nil
}

func (s *Server) getParameterLocked(pr Principal, in getParameterInput) (any, error) {
	out, err := s.readLocked(pr, "ssm:GetParameter", in.Name, in.WithDecryption != nil && *in.WithDecryption)
	if err != nil {
		return nil, err
	}
	return getParameterOutput{Parameter: out}, nil
}

func (s *Server) getParametersLocked(pr Principal, in getParametersInput) (any, error) {
	if len(in.Names) == 0 || len(in.Names) > maxGetParametersNames {
		return nil, errorf(codeValidation, "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to %d and greater than or equal to 1", maxGetParametersNames)
	}
	// IAM decides on every named resource before anything is read: one
	// denied name denies the call.
	for _, ref := range in.Names {
		name, _, err := s.splitSelector(ref)
		if err != nil {
			continue // reported among InvalidParameters below
		}
		if err := s.authorizeLocked(pr, "ssm:GetParameters", s.arn(name), nil); err != nil {
			return nil, err
		}
	}
	out := getParametersOutput{Parameters: []*parameterOut{}, InvalidParameters: []string{}}
	seen := map[string]bool{}
	for _, ref := range in.Names {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		p, err := s.readLocked(pr, "ssm:GetParameters", ref, in.WithDecryption != nil && *in.WithDecryption)
		if ae, ok := err.(*apiError); ok && (ae.Code == codeParameterNotFound || ae.Code == codeParameterVersionNotFound || ae.Code == codeValidation) {
			out.InvalidParameters = append(out.InvalidParameters, ref)
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Parameters = append(out.Parameters, p)
	}
	return out, nil
}

func (s *Server) putParameterLocked(pr Principal, in putParameterInput) (any, error) {
	if err := checkName(in.Name); err != nil {
		return nil, err
	}
	arn := s.arn(in.Name)
	if err := s.authorizeLocked(pr, "ssm:PutParameter", arn, nil); err != nil {
		return nil, err
	}
	if in.Value == nil {
		return nil, errorf(codeValidation, "1 validation error detected: Value null at 'value' failed to satisfy constraint: Member must not be null")
	}
	value := *in.Value
	if value == "" {
		return nil, errorf(codeValidation, "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(in.Description) > maxDescriptionLength {
		return nil, errorf(codeValidation, "Description must be at most %d characters.", maxDescriptionLength)
	}
	if in.Policies != "" {
		return nil, errorf(codeValidation, "ssmsim does not model parameter policies.")
	}
	overwrite := in.Overwrite != nil && *in.Overwrite
	if overwrite && len(in.Tags) > 0 {
		return nil, errorf(codeValidation, "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.")
	}
	existing, exists := s.params[in.Name]
	if exists && !overwrite {
		return nil, errorf(codeParameterAlreadyExists, "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	}
	if !exists && len(s.params) >= s.cfg.MaxParameters {
		return nil, errorf(codeParameterLimitExceeded, "You have exceeded the number of parameters for this AWS account (%d).", s.cfg.MaxParameters)
	}

	typ := in.Type
	switch {
	case typ == "" && !exists:
		return nil, errorf(codeValidation, "A parameter type is required when you create a parameter.")
	case typ == "":
		typ = existing.typ
	case typ != TypeString && typ != TypeStringList && typ != TypeSecureString:
		return nil, errorf(codeValidation, "1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", typ)
	case exists && typ != existing.typ:
		return nil, errorf(codeHierarchyTypeMismatch, "The parameter type can't be changed from %s to %s. You must create a new, unique parameter.", existing.typ, typ)
	}
	if in.KeyID != "" && typ != TypeSecureString {
		return nil, errorf(codeValidation, "KeyId is required for SecureString type parameter only.")
	}
	dataType := in.DataType
	switch dataType {
	case "":
		dataType = "text"
		if exists {
			dataType = existing.dataType
		}
	case "text":
	default:
		return nil, errorf(codeValidation, "ssmsim models only the text data type, not %q", dataType)
	}

	pattern := in.AllowedPattern
	if pattern == "" && exists {
		pattern = existing.allowedPattern
	}
	if pattern != "" {
		if len(pattern) > maxAllowedPatternLength {
			return nil, errorf(codeInvalidAllowedPattern, "The allowed pattern is longer than %d characters.", maxAllowedPatternLength)
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, errorf(codeInvalidAllowedPattern, "The request does not meet the regular expression requirement: %v", err)
		}
		if !re.MatchString(value) {
			return nil, errorf(codePatternMismatch, "Parameter value, cannot be validated against allowedPattern: %s", pattern)
		}
	}

	tier := in.Tier
	switch tier {
	case "":
		tier = TierStandard
		if exists {
			tier = existing.tier
		}
	case TierStandard, TierAdvanced:
	case TierIntelligentTiering:
		tier = TierStandard
		if len(value) > maxStandardValue || (exists && existing.tier == TierAdvanced) {
			tier = TierAdvanced
		}
	default:
		return nil, errorf(codeValidation, "1 validation error detected: Value '%s' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]", tier)
	}
	if exists && existing.tier == TierAdvanced && tier == TierStandard {
		return nil, errorf(codeValidation, "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier.")
	}
	limit := maxStandardValue
	if tier == TierAdvanced {
		limit = maxAdvancedValue
	}
	if len(value) > limit {
		return nil, errorf(codeValidation, "Parameter value, cannot be longer than %d characters in the %s tier.", limit, tier)
	}

	v := version{modified: s.cfg.Now().UTC()}
	if typ == TypeSecureString {
		keyRef := in.KeyID
		if keyRef == "" && exists {
			keyRef = existing.latest().keyID
		}
		k, err := s.resolveKeyLocked(keyRef)
		if err != nil {
			return nil, err
		}
		if err := s.authorizeKMSLocked(pr, "kms:Encrypt", k, arn); err != nil {
			return nil, err
		}
		if v.value, err = k.encrypt(value, arn); err != nil {
			return nil, err
		}
		v.keyID = k.id
	} else {
		v.value = value
	}

	if !exists {
		existing = &parameter{name: in.Name, typ: typ}
		s.params[in.Name] = existing
	}
	existing.tier, existing.dataType, existing.allowedPattern = tier, dataType, pattern
	if in.Description != "" {
		existing.description = in.Description
	}
	v.number = 1
	if len(existing.versions) > 0 {
		v.number = existing.latest().number + 1
	}
	existing.versions = append(existing.versions, v)
	if len(existing.versions) > maxVersions {
		// Parameter Store drops the oldest version past its history limit.
		existing.versions = existing.versions[1:]
	}
	return putParameterOutput{Version: v.number, Tier: tier}, nil
}

func (s *Server) deleteParameterLocked(pr Principal, in deleteParameterInput) (any, error) {
	if err := checkName(in.Name); err != nil {
		return nil, err
	}
	if err := s.authorizeLocked(pr, "ssm:DeleteParameter", s.arn(in.Name), nil); err != nil {
		return nil, err
	}
	if _, ok := s.params[in.Name]; !ok {
		return nil, errorf(codeParameterNotFound, "Parameter %s not found.", in.Name)
	}
	delete(s.params, in.Name)
	return struct{}{}, nil
}
