# Terraform 1.8 and later. The settings name Parameter Store parameters;
# the auth service reads their values at boot (and on SIGHUP) with its
# instance role, so the user data holds no secret.
output "auth_user_data" {
  value = provider::wsdirect::cloudinit("auth", {
    release_url           = "https://example.com/releases/v1.0.0/wsdirect-auth_1.0.0_linux_amd64.tar.gz"
    sha256                = "0000000000000000000000000000000000000000000000000000000000000000"
    gossip_key_parameter  = "/wsdirect/chat/gossip-key"
    join_tag              = "wsdirect:cluster=chat"
    signing_key_parameter = "/wsdirect/chat/signing-key"
    users_parameter       = "/wsdirect/chat/users"
    admin_token_parameter = "/wsdirect/chat/admin-token"
    # https:// on 443 with a Let's Encrypt certificate for the name clients
    # use; tls = "files" takes a certificate already on the instance instead.
    tls       = "acme"
    tls_names = "auth.example.com"
  })
}
