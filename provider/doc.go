// Package provider implements the wsdirect Terraform provider on
// terraform-plugin-framework: EC2 nodes with secondary private IPs and public
// IPs (wsdirect_node, wsdirect_private_ips), node discovery by tag
// (wsdirect_nodes), and the HAProxy and cloud-init renderers.
//
// All EC2 access goes through the EC2API interface, built once per provider
// configuration from aws-sdk-go-v2 and handed to resources as ProviderData,
// so tests can point the provider at internal/ec2sim or inject a client.
package provider
