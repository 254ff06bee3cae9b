package localcloud

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

// metadata is one instance's instance metadata service, IMDSv2 only (as EC2 with
// HttpTokens=required): a session token from PUT /latest/api/token must come with every GET.
// It answers from the emulator's current view of the instance, so an Elastic IP associated
// after boot shows up in public-ipv4 at once.
type metadata struct {
	id      string
	lookup  func(id string) (ec2sim.Instance, bool)
	region  string
	account string

	ln  net.Listener
	srv *http.Server

	mu     sync.Mutex
	tokens map[string]time.Time // token -> expiry
	creds  *roleCreds
}

type roleCreds struct {
	AccessKeyID, SecretAccessKey, Token string
	Expiration                          time.Time
	// Profile is the instance profile the credentials were issued for; the
	// local cloud's Parameter Store applies its role policy (ssm.go).
	Profile string
}

const (
	imdsTokenHeader = "X-aws-ec2-metadata-token"
	imdsTTLHeader   = "X-aws-ec2-metadata-token-ttl-seconds"
	maxTokenTTL     = 21600
)

// startIMDS listens on a free loopback port for instance id.
func startIMDS(id, region, account string, lookup func(string) (ec2sim.Instance, bool)) (*metadata, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("localcloud: IMDS for %s: %w", id, err)
	}
	m := &metadata{id: id, lookup: lookup, region: region, account: account, ln: ln, tokens: map[string]time.Time{}}
	m.srv = &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = m.srv.Serve(ln) }()
	return m, nil
}

// URL is the value of AWS_EC2_METADATA_SERVICE_ENDPOINT for the instance's processes.
func (m *metadata) URL() string { return "http://" + m.ln.Addr().String() }

func (m *metadata) close() { _ = m.srv.Close() }

func (m *metadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/latest/api/token" {
		m.token(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !m.validToken(r.Header.Get(imdsTokenHeader)) {
		// IMDSv1 is disabled: EC2 answers 401 to a request without a valid session token.
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	in, ok := m.lookup(m.id)
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, ok := m.answer(in, r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(body, "{") {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/plain")
	}
	_, _ = w.Write([]byte(body))
}

func (m *metadata) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// EC2 refuses token requests that went through a proxy.
	if r.Header.Get("X-Forwarded-For") != "" {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(imdsTTLHeader))
	if err != nil || ttl < 1 || ttl > maxTokenTTL {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	m.mu.Lock()
	now := time.Now()
	for t, exp := range m.tokens {
		if now.After(exp) {
			delete(m.tokens, t)
		}
	}
	m.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	m.mu.Unlock()
	w.Header().Set(imdsTTLHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

func (m *metadata) validToken(tok string) bool {
	if tok == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.tokens[tok]
	return ok && time.Now().Before(exp)
}

// answer returns the document at path, or false for 404. Directories list their entries one
// per line, sub-directories with a trailing slash, as EC2 does.
func (m *metadata) answer(in ec2sim.Instance, path string) (string, bool) {
	switch path {
	case "/latest/user-data":
		if in.UserData == "" {
			return "", false
		}
		raw, err := base64.StdEncoding.DecodeString(in.UserData)
		if err != nil {
			return "", false
		}
		return string(raw), true
	case "/latest/dynamic/instance-identity/document":
		doc, _ := json.MarshalIndent(map[string]any{
			"accountId": m.account, "architecture": "x86_64", "availabilityZone": in.AvailabilityZone,
			"imageId": in.ImageID, "instanceId": in.ID, "instanceType": in.InstanceType,
			"pendingTime": in.LaunchTime.UTC().Format(time.RFC3339), "privateIp": in.PrivateIP,
			"region": m.region, "version": "2017-09-30",
		}, "", "  ")
		return string(doc), true
	}
	rest, ok := strings.CutPrefix(path, "/latest/meta-data")
	if !ok {
		return "", false
	}
	tree := m.metadata(in)
	key := strings.Trim(rest, "/")
	if key == "" {
		return listing(tree, ""), true
	}
	if v, ok := tree[key]; ok {
		return v, true
	}
	if l := listing(tree, key+"/"); l != "" {
		return l, true
	}
	return "", false
}

// metadata flattens the meta-data tree into "path/to/leaf" -> value.
func (m *metadata) metadata(in ec2sim.Instance) map[string]string {
	t := map[string]string{
		"ami-id":                      in.ImageID,
		"ami-launch-index":            "0",
		"hostname":                    in.PrivateDNSName,
		"instance-id":                 in.ID,
		"instance-type":               in.InstanceType,
		"local-hostname":              in.PrivateDNSName,
		"local-ipv4":                  in.PrivateIP,
		"placement/availability-zone": in.AvailabilityZone,
		"placement/region":            m.region,
		"reservation-id":              in.ReservationID,
		"security-groups":             strings.Join(in.SecurityGroupIDs, "\n"),
	}
	if in.PublicIP != "" {
		t["public-ipv4"] = in.PublicIP
		t["public-hostname"] = in.PublicDNSName
	}
	for _, ni := range in.NetworkInterfaces {
		if ni.DeviceIndex == 0 {
			t["mac"] = ni.MAC
		}
		p := "network/interfaces/macs/" + ni.MAC + "/"
		t[p+"device-number"] = strconv.Itoa(ni.DeviceIndex)
		t[p+"interface-id"] = ni.ID
		t[p+"local-ipv4s"] = strings.Join(ni.PrivateIPs, "\n")
		t[p+"mac"] = ni.MAC
		t[p+"subnet-id"] = ni.SubnetID
		t[p+"subnet-ipv4-cidr-block"] = ni.SubnetCIDR
		t[p+"vpc-id"] = in.VpcID
		t[p+"security-group-ids"] = strings.Join(ni.SecurityGroupIDs, "\n")
		var pubs []string
		for _, p := range ni.PublicIPs {
			if p != "" {
				pubs = append(pubs, p)
			}
		}
		if len(pubs) > 0 {
			t[p+"public-ipv4s"] = strings.Join(pubs, "\n")
		}
	}
	if in.IamInstanceProfile != "" {
		role := in.IamInstanceProfile
		if i := strings.LastIndex(role, "/"); i >= 0 {
			role = role[i+1:]
		}
		c := m.roleCredentials(role)
		info, _ := json.MarshalIndent(map[string]string{
			"Code": "Success", "LastUpdated": time.Now().UTC().Format(time.RFC3339),
			"InstanceProfileArn": "arn:aws:iam::" + m.account + ":instance-profile/" + role,
			"InstanceProfileId":  "AIPA" + strings.ToUpper(hex.EncodeToString([]byte(in.ID))[:16]),
		}, "", "  ")
		cred, _ := json.MarshalIndent(map[string]string{
			"Code": "Success", "LastUpdated": time.Now().UTC().Format(time.RFC3339), "Type": "AWS-HMAC",
			"AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey, "Token": c.Token,
			"Expiration": c.Expiration.UTC().Format(time.RFC3339),
		}, "", "  ")
		t["iam/info"] = string(info)
		t["iam/security-credentials/"+role] = string(cred)
	}
	return t
}

// roleCredentials are the instance role's temporary credentials, renewed an hour before they
// expire (the emulator records the key ID of each call; it checks no signature).
func (m *metadata) roleCredentials(profile string) roleCreds {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.creds == nil || time.Until(m.creds.Expiration) < time.Hour || m.creds.Profile != profile {
		var b [20]byte
		_, _ = rand.Read(b[:])
		m.creds = &roleCreds{
			AccessKeyID:     "ASIA" + strings.ToUpper(hex.EncodeToString(b[:8])),
			SecretAccessKey: base64.StdEncoding.EncodeToString(b[:]),
			Token:           base64.StdEncoding.EncodeToString(append([]byte("localcloud:"+m.id+":"), b[8:]...)),
			Expiration:      time.Now().Add(6 * time.Hour),
			Profile:         profile,
		}
	}
	return *m.creds
}

// credsFor reports the instance profile whose current credentials have
// access key id, if they are this instance's.
func (m *metadata) credsFor(id string) (profile string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.creds == nil || m.creds.AccessKeyID != id || time.Now().After(m.creds.Expiration) {
		return "", false
	}
	return m.creds.Profile, true
}

// listing lists the direct children of dir ("" = the root) in tree.
func listing(tree map[string]string, dir string) string {
	seen := map[string]bool{}
	for k := range tree {
		rest, ok := strings.CutPrefix(k, dir)
		if !ok || rest == "" {
			continue
		}
		if i := strings.Index(rest, "/"); i >= 0 {
			seen[rest[:i+1]] = true
		} else {
			seen[rest] = true
		}
	}
	if len(seen) == 0 {
		return ""
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
