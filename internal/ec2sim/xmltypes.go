package ec2sim

// XML shapes of EC2 responses. Element names follow the SDK's ec2query deserializers
// (service/ec2/deserializers.go): lists are "<fooSet><item>...</item></fooSet>".

type meta struct {
	RequestID string `xml:"requestId"`
}

func (m *meta) setRequestID(id string) { m.RequestID = id }

type returnResp struct {
	meta
	Return bool `xml:"return"`
}

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName,omitempty"`
}

type xState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	GroupName        string `xml:"groupName"`
	Tenancy          string `xml:"tenancy"`
}

type xIamProfile struct {
	Arn string `xml:"arn"`
	ID  string `xml:"id"`
}

type xStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xEbs struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xBlockDevice struct {
	DeviceName string `xml:"deviceName"`
	Ebs        xEbs   `xml:"ebs"`
}

type xAssociation struct {
	PublicIP      string `xml:"publicIp"`
	PublicDNSName string `xml:"publicDnsName"`
	IPOwnerID     string `xml:"ipOwnerId"`
	AllocationID  string `xml:"allocationId,omitempty"`  // NetworkInterfaceAssociation only
	AssociationID string `xml:"associationId,omitempty"` // NetworkInterfaceAssociation only
}

type xPrivateIP struct {
	PrivateIPAddress string        `xml:"privateIpAddress"`
	PrivateDNSName   string        `xml:"privateDnsName"`
	Primary          bool          `xml:"primary"`
	Association      *xAssociation `xml:"association,omitempty"`
}

type xInstanceAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	DeviceIndex         int    `xml:"deviceIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	InstanceID          string `xml:"instanceId,omitempty"`      // NetworkInterfaceAttachment only
	InstanceOwnerID     string `xml:"instanceOwnerId,omitempty"` // NetworkInterfaceAttachment only
}

// xInstanceENI is types.InstanceNetworkInterface.
type xInstanceENI struct {
	NetworkInterfaceID string              `xml:"networkInterfaceId"`
	SubnetID           string              `xml:"subnetId"`
	VpcID              string              `xml:"vpcId"`
	Description        string              `xml:"description"`
	OwnerID            string              `xml:"ownerId"`
	Status             string              `xml:"status"`
	MacAddress         string              `xml:"macAddress"`
	PrivateIPAddress   string              `xml:"privateIpAddress"`
	PrivateDNSName     string              `xml:"privateDnsName"`
	SourceDestCheck    bool                `xml:"sourceDestCheck"`
	Groups             []xGroup            `xml:"groupSet>item"`
	Attachment         xInstanceAttachment `xml:"attachment"`
	Association        *xAssociation       `xml:"association,omitempty"`
	PrivateIPs         []xPrivateIP        `xml:"privateIpAddressesSet>item"`
	InterfaceType      string              `xml:"interfaceType"`
}

// xENI is types.NetworkInterface (DescribeNetworkInterfaces).
type xENI struct {
	NetworkInterfaceID string               `xml:"networkInterfaceId"`
	SubnetID           string               `xml:"subnetId"`
	VpcID              string               `xml:"vpcId"`
	AvailabilityZone   string               `xml:"availabilityZone"`
	Description        string               `xml:"description"`
	OwnerID            string               `xml:"ownerId"`
	RequesterManaged   bool                 `xml:"requesterManaged"`
	Status             string               `xml:"status"`
	MacAddress         string               `xml:"macAddress"`
	PrivateIPAddress   string               `xml:"privateIpAddress"`
	PrivateDNSName     string               `xml:"privateDnsName"`
	SourceDestCheck    bool                 `xml:"sourceDestCheck"`
	Groups             []xGroup             `xml:"groupSet>item"`
	Attachment         *xInstanceAttachment `xml:"attachment,omitempty"`
	Association        *xAssociation        `xml:"association,omitempty"`
	Tags               []xTag               `xml:"tagSet>item"`
	PrivateIPs         []xPrivateIP         `xml:"privateIpAddressesSet>item"`
	InterfaceType      string               `xml:"interfaceType"`
}

type xInstance struct {
	InstanceID         string         `xml:"instanceId"`
	ImageID            string         `xml:"imageId"`
	State              xState         `xml:"instanceState"`
	PrivateDNSName     string         `xml:"privateDnsName"`
	DNSName            string         `xml:"dnsName"`
	Reason             string         `xml:"reason"`
	KeyName            string         `xml:"keyName,omitempty"`
	AmiLaunchIndex     int            `xml:"amiLaunchIndex"`
	InstanceType       string         `xml:"instanceType"`
	LaunchTime         string         `xml:"launchTime"`
	Placement          xPlacement     `xml:"placement"`
	SubnetID           string         `xml:"subnetId,omitempty"`
	VpcID              string         `xml:"vpcId,omitempty"`
	PrivateIPAddress   string         `xml:"privateIpAddress,omitempty"`
	IPAddress          string         `xml:"ipAddress,omitempty"`
	SourceDestCheck    bool           `xml:"sourceDestCheck"`
	Groups             []xGroup       `xml:"groupSet>item"`
	StateReason        *xStateReason  `xml:"stateReason,omitempty"`
	Architecture       string         `xml:"architecture"`
	RootDeviceType     string         `xml:"rootDeviceType"`
	RootDeviceName     string         `xml:"rootDeviceName"`
	BlockDevices       []xBlockDevice `xml:"blockDeviceMapping>item"`
	VirtualizationType string         `xml:"virtualizationType"`
	ClientToken        string         `xml:"clientToken,omitempty"`
	Tags               []xTag         `xml:"tagSet>item"`
	Hypervisor         string         `xml:"hypervisor"`
	NetworkInterfaces  []xInstanceENI `xml:"networkInterfaceSet>item"`
	IamInstanceProfile *xIamProfile   `xml:"iamInstanceProfile,omitempty"`
	EbsOptimized       bool           `xml:"ebsOptimized"`

	// See metadata.go.
	MetadataOptions *xMetadataOptions `xml:"metadataOptions,omitempty"`
}

type xReservation struct {
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Groups        []xGroup    `xml:"groupSet>item"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

type runInstancesResp struct {
	meta
	xReservation
}

type describeInstancesResp struct {
	meta
	Reservations []xReservation `xml:"reservationSet>item"`
	NextToken    string         `xml:"nextToken,omitempty"`
}

type xStateChange struct {
	InstanceID    string `xml:"instanceId"`
	CurrentState  xState `xml:"currentState"`
	PreviousState xState `xml:"previousState"`
}

type terminateInstancesResp struct {
	meta
	Instances []xStateChange `xml:"instancesSet>item"`
}

type stopInstancesResp struct {
	meta
	Instances []xStateChange `xml:"instancesSet>item"`
}

type startInstancesResp struct {
	meta
	Instances []xStateChange `xml:"instancesSet>item"`
}

type xNetworkInfo struct {
	NetworkPerformance        string `xml:"networkPerformance,omitempty"`
	MaximumNetworkInterfaces  int    `xml:"maximumNetworkInterfaces"`
	MaximumNetworkCards       int    `xml:"maximumNetworkCards"`
	DefaultNetworkCardIndex   int    `xml:"defaultNetworkCardIndex"`
	Ipv4AddressesPerInterface int    `xml:"ipv4AddressesPerInterface"`
	Ipv6AddressesPerInterface int    `xml:"ipv6AddressesPerInterface"`
	Ipv6Supported             bool   `xml:"ipv6Supported"`
	EnaSupport                string `xml:"enaSupport"`
}

type xVCPU struct {
	DefaultVCpus int `xml:"defaultVCpus"`
}

type xMemory struct {
	SizeInMiB int `xml:"sizeInMiB"`
}

type xInstanceType struct {
	InstanceType      string       `xml:"instanceType"`
	CurrentGeneration bool         `xml:"currentGeneration"`
	VCPUInfo          *xVCPU       `xml:"vCpuInfo,omitempty"`
	MemoryInfo        *xMemory     `xml:"memoryInfo,omitempty"`
	NetworkInfo       xNetworkInfo `xml:"networkInfo"`
}

type describeInstanceTypesResp struct {
	meta
	InstanceTypes []xInstanceType `xml:"instanceTypeSet>item"`
	NextToken     string          `xml:"nextToken,omitempty"`
}

type xAttrValue struct {
	Value *string `xml:"value,omitempty"`
}

type xAttrBool struct {
	Value bool `xml:"value"`
}

type describeInstanceAttributeResp struct {
	meta
	InstanceID            string      `xml:"instanceId"`
	UserData              *xAttrValue `xml:"userData,omitempty"`
	InstanceType          *xAttrValue `xml:"instanceType,omitempty"`
	ShutdownBehavior      *xAttrValue `xml:"instanceInitiatedShutdownBehavior,omitempty"`
	RootDeviceName        *xAttrValue `xml:"rootDeviceName,omitempty"`
	DisableAPITermination *xAttrBool  `xml:"disableApiTermination,omitempty"`
	DisableAPIStop        *xAttrBool  `xml:"disableApiStop,omitempty"`
	SourceDestCheck       *xAttrBool  `xml:"sourceDestCheck,omitempty"`
	EbsOptimized          *xAttrBool  `xml:"ebsOptimized,omitempty"`
	EnaSupport            *xAttrBool  `xml:"enaSupport,omitempty"`
	Groups                []xGroup    `xml:"groupSet>item,omitempty"`
}

type xVpc struct {
	VpcID           string `xml:"vpcId"`
	OwnerID         string `xml:"ownerId"`
	State           string `xml:"state"`
	CidrBlock       string `xml:"cidrBlock"`
	DhcpOptionsID   string `xml:"dhcpOptionsId"`
	InstanceTenancy string `xml:"instanceTenancy"`
	IsDefault       bool   `xml:"isDefault"`
	Tags            []xTag `xml:"tagSet>item"`
}

type describeVpcsResp struct {
	meta
	Vpcs []xVpc `xml:"vpcSet>item"`
}

type xSubnet struct {
	SubnetID                string `xml:"subnetId"`
	SubnetArn               string `xml:"subnetArn"`
	State                   string `xml:"state"`
	OwnerID                 string `xml:"ownerId"`
	VpcID                   string `xml:"vpcId"`
	CidrBlock               string `xml:"cidrBlock"`
	AvailableIPAddressCount int    `xml:"availableIpAddressCount"`
	AvailabilityZone        string `xml:"availabilityZone"`
	DefaultForAz            bool   `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool   `xml:"mapPublicIpOnLaunch"`
	Tags                    []xTag `xml:"tagSet>item"`
}

type describeSubnetsResp struct {
	meta
	Subnets []xSubnet `xml:"subnetSet>item"`
}

type xSecurityGroup struct {
	OwnerID          string `xml:"ownerId"`
	GroupID          string `xml:"groupId"`
	GroupName        string `xml:"groupName"`
	GroupDescription string `xml:"groupDescription"`
	VpcID            string `xml:"vpcId"`
	Tags             []xTag `xml:"tagSet>item"`
}

type describeSecurityGroupsResp struct {
	meta
	Groups []xSecurityGroup `xml:"securityGroupInfo>item"`
}

type describeNetworkInterfacesResp struct {
	meta
	NetworkInterfaces []xENI `xml:"networkInterfaceSet>item"`
}

type xAssignedIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
}

type assignPrivateIPsResp struct {
	meta
	NetworkInterfaceID string        `xml:"networkInterfaceId"`
	Assigned           []xAssignedIP `xml:"assignedPrivateIpAddressesSet>item"`
}

type allocateAddressResp struct {
	meta
	PublicIP           string `xml:"publicIp"`
	Domain             string `xml:"domain"`
	AllocationID       string `xml:"allocationId"`
	PublicIPv4Pool     string `xml:"publicIpv4Pool"`
	NetworkBorderGroup string `xml:"networkBorderGroup"`
}

type associateAddressResp struct {
	meta
	Return        bool   `xml:"return"`
	AssociationID string `xml:"associationId"`
}

type xAddress struct {
	PublicIP                string `xml:"publicIp"`
	AllocationID            string `xml:"allocationId"`
	Domain                  string `xml:"domain"`
	InstanceID              string `xml:"instanceId,omitempty"`
	AssociationID           string `xml:"associationId,omitempty"`
	NetworkInterfaceID      string `xml:"networkInterfaceId,omitempty"`
	NetworkInterfaceOwnerID string `xml:"networkInterfaceOwnerId,omitempty"`
	PrivateIPAddress        string `xml:"privateIpAddress,omitempty"`
	SubnetID                string `xml:"subnetId,omitempty"`
	PublicIPv4Pool          string `xml:"publicIpv4Pool"`
	NetworkBorderGroup      string `xml:"networkBorderGroup"`
	Tags                    []xTag `xml:"tagSet>item"`
}

type describeAddressesResp struct {
	meta
	Addresses []xAddress `xml:"addressesSet>item"`
}

type xTagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsResp struct {
	meta
	Tags []xTagDescription `xml:"tagSet>item"`
}
