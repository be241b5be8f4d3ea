"""SSO setup guides of the cloud identity providers: Okta, Microsoft Entra ID, Google Workspace,
OneLogin, JumpCloud, PingOne, Auth0 — in each console's own labels (checked against the
vendors' documentation)."""

from __future__ import annotations

from sso_gate.web.portal._guide_model import (
    ASSIGN,
    CLAIMS,
    NAME_ID_EMAIL,
    Field,
    Guide,
    Provider,
    Step,
    attrs,
)

__all__ = ["OKTA", "ENTRA", "GOOGLE", "ONELOGIN", "JUMPCLOUD", "PINGONE", "AUTH0"]

OKTA = Provider(
    "okta",
    "Okta",
    saml=Guide(
        "OktaSAML",
        (
            Step(
                "In the Okta Admin Console, open Applications → Applications, click "
                "Create App Integration, choose SAML 2.0 and click Next."
            ),
            Step("Under General Settings, enter an App name (for example {product}), then Next."),
            Step(
                "Under Configure SAML → General, enter:",
                (
                    Field("Single sign-on URL", "$acs_url"),
                    Field("Audience URI (SP Entity ID)", "$sp_entity_id"),
                    Field("Name ID format", "EmailAddress"),
                    Field("Application username", "Email"),
                ),
                note="Keep “Use this for Recipient URL and Destination URL” checked.",
            ),
            Step(
                "Under Attribute Statements add the rows below (Name format Unspecified); under "
                "Group Attribute Statements add groups with the filter Matches regex .*",
                attributes=attrs(
                    ("user.email", "user.firstName", "user.lastName", "Matches regex: .*")
                ),
            ),
            Step("Click Next, choose “This is an internal app that we have created”, and Finish."),
            Step("On the Assignments tab: " + ASSIGN),
        ),
        "On the Sign On tab, under SAML Signing Certificates, choose Actions → View IdP "
        "metadata on the Active certificate and copy that page's address.",
        example="https://your-org.okta.com/app/exk…/sso/saml/metadata",
    ),
    oidc=Guide(
        "OktaOIDC",
        (
            Step(
                "In the Okta Admin Console, open Applications → Applications, click "
                "Create App Integration, choose OIDC - OpenID Connect and Web Application, "
                "then Next."
            ),
            Step(
                "Enter an App integration name, keep the Authorization Code grant type and enter:",
                (Field("Sign-in redirect URIs", "$redirect_uri"),),
                note="Remove the sample localhost redirect URI.",
            ),
            Step("Under Assignments choose who may sign in, then Save."),
            Step(
                "To send groups: on the Sign On tab edit OpenID Connect ID Token and set Groups "
                "claim type Filter, name groups, Matches regex .*"
            ),
        ),
        "On the General tab copy the Client ID and Client secret. The issuer is your Okta domain.",
        example="https://your-org.okta.com",
    ),
)

ENTRA = Provider(
    "entra_id",
    "Microsoft Entra ID",
    saml=Guide(
        "AzureSAML",
        (
            Step(
                "In the Microsoft Entra admin center, open Enterprise applications, click New "
                "application → Create your own application, name it, choose “Integrate any "
                "other application you don't find in the gallery (Non-gallery)” and Create."
            ),
            Step(
                "Open Single sign-on, choose SAML, and in Basic SAML Configuration click Edit:",
                (
                    Field("Identifier (Entity ID)", "$sp_entity_id"),
                    Field("Reply URL (Assertion Consumer Service URL)", "$acs_url"),
                ),
                note="Click Save.",
            ),
            Step(
                "Attributes & Claims already sends the claims below. Click Add a group claim and "
                "choose Groups assigned to the application to send groups too.",
                attributes=attrs(
                    ("user.mail", "user.givenname", "user.surname", "Add a group claim"),
                    (
                        CLAIMS + "emailaddress",
                        CLAIMS + "givenname",
                        CLAIMS + "surname",
                        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
                    ),
                ),
            ),
            Step("In Users and groups: " + ASSIGN),
        ),
        "In SAML Certificates, copy the App Federation Metadata Url.",
        example="https://login.microsoftonline.com/<tenant-id>/federationmetadata/2007-06/"
        "federationmetadata.xml?appid=…",
    ),
    oidc=Guide(
        "EntraIdOIDC",
        (
            Step(
                "In the Microsoft Entra admin center, open App registrations and click New "
                "registration. Choose “Accounts in this organizational directory only”; under "
                "Redirect URI choose Web and enter:",
                (Field("Redirect URI (Web)", "$redirect_uri"),),
                note="Click Register.",
            ),
            Step(
                "Open Certificates & secrets → Client secrets → New client secret and copy its "
                "Value (Entra shows it only once)."
            ),
            Step(
                "Open Token configuration → Add optional claim → ID: email, given_name, "
                "family_name. Add groups claim to send groups."
            ),
            Step("In Enterprise applications → this app → Users and groups: " + ASSIGN),
        ),
        "On Overview copy the Application (client) ID. The issuer contains the Directory "
        "(tenant) ID.",
        example="https://login.microsoftonline.com/<Directory (tenant) ID>/v2.0",
    ),
)

GOOGLE = Provider(
    "google",
    "Google Workspace",
    saml=Guide(
        "GoogleSAML",
        (
            Step(
                "In the Google Admin console, open Apps → Web and mobile apps and choose Add app "
                "→ Add custom SAML app. Enter an App name and click Continue."
            ),
            Step(
                "On Google Identity Provider details, click DOWNLOAD METADATA and keep the file "
                "for the upload below. Click Continue."
            ),
            Step(
                "On Service provider details, enter:",
                (
                    Field("ACS URL", "$acs_url"),
                    Field("Entity ID", "$sp_entity_id"),
                    Field("Name ID format", "EMAIL"),
                    Field("Name ID", "Basic Information > Primary email"),
                ),
            ),
            Step(
                "On Attribute mapping, map these Google Directory attributes to App attributes "
                "(for groups, use Group membership):",
                attributes=attrs(("Primary email", "First name", "Last name", "Group membership")),
            ),
            Step(
                "Click Finish, open User access and turn the app ON for everyone (or the "
                "organizational units that should sign in)."
            ),
        ),
        "Google publishes no metadata URL: upload the file from step 2 (GoogleIDPMetadata.xml).",
        metadata="file",
    ),
    oidc=Guide(
        "GoogleOIDC",
        (
            Step(
                "In the Google Cloud console, open APIs & Services → OAuth consent screen and "
                "choose the Internal user type (only your Workspace users)."
            ),
            Step(
                "Open APIs & Services → Credentials → Create credentials → OAuth client ID, "
                "choose Web application and add:",
                (Field("Authorized redirect URIs", "$redirect_uri"),),
            ),
        ),
        "Copy the Client ID and Client secret. Google's ID tokens carry no groups.",
        example="https://accounts.google.com",
    ),
)

ONELOGIN = Provider(
    "onelogin",
    "OneLogin",
    saml=Guide(
        "OneLoginSAML",
        (
            Step(
                "In OneLogin, open Applications → Applications, click Add App, search for "
                "“SAML Custom Connector (Advanced)”, select it, enter a Display Name and Save."
            ),
            Step(
                "On the Configuration tab, enter:",
                (
                    Field("Audience (EntityID)", "$sp_entity_id"),
                    Field("Recipient", "$acs_url"),
                    Field("ACS (Consumer) URL Validator", "$acs_url_regex"),
                    Field("ACS (Consumer) URL", "$acs_url"),
                    Field("SAML initiator", "Service Provider"),
                    Field("SAML nameID format", "Email"),
                    Field("SAML signature element", "Assertion"),
                ),
                note="Click Save.",
            ),
            Step(
                "On the Parameters tab, add each field with “Include in SAML assertion” checked "
                "(groups as a multi-value parameter):",
                attributes=attrs(("Email", "First Name", "Last Name", "User Roles")),
            ),
            Step("On the Users or Access tab: " + ASSIGN),
        ),
        "On the SSO tab, copy the Issuer URL (it is the metadata URL).",
        example="https://your-org.onelogin.com/saml/metadata/…",
    ),
    oidc=Guide(
        "OneLoginOIDC",
        (
            Step(
                "In OneLogin, open Applications → Applications, click Add App, search for "
                "“OpenId Connect (OIDC)”, select it, name it and Save."
            ),
            Step("On the Configuration tab, enter:", (Field("Redirect URI's", "$redirect_uri"),)),
            Step("On the SSO tab, set Token Endpoint → Authentication Method to Basic and Save."),
            Step("On the Access tab: " + ASSIGN),
        ),
        "On the SSO tab copy the Client ID and Client Secret.",
        example="https://your-org.onelogin.com/oidc/2",
    ),
)

JUMPCLOUD = Provider(
    "jumpcloud",
    "JumpCloud",
    saml=Guide(
        "JumpCloudSAML",
        (
            Step(
                "In the JumpCloud Admin Portal, open SSO Applications, click + Add New "
                "Application, choose Custom Application, then Manage Single Sign-On (SSO) → "
                "Configure SSO with SAML, and enter a Display Label."
            ),
            Step(
                "On the SSO tab, enter:",
                (
                    Field("IdP Entity ID", "a unique name, e.g. jumpcloud-{product}"),
                    Field("SP Entity ID", "$sp_entity_id"),
                    Field("ACS URLs (Default URL)", "$acs_url"),
                    Field("SAMLSubject NameID", "email"),
                    Field("SAMLSubject NameID Format", NAME_ID_EMAIL),
                    Field("Signature Algorithm", "RSA-SHA256"),
                    Field("Sign", "Assertion"),
                ),
            ),
            Step(
                "Under Attributes, add these user attributes, and check “Include group "
                "attribute” with the name memberOf:",
                attributes=attrs(
                    ("email", "firstname", "lastname", "Include group attribute"),
                    ("email", "firstname", "lastname", "memberOf"),
                ),
            ),
            Step("Click Activate; on the User Groups tab bind the groups who should sign in."),
        ),
        "On the application's SSO tab, click Export Metadata and upload the downloaded file.",
        metadata="file",
    ),
    oidc=Guide(
        "JumpCloudOIDC",
        (
            Step(
                "In the JumpCloud Admin Portal, open SSO Applications, click + Add New "
                "Application, choose Custom Application, then Configure SSO with OIDC."
            ),
            Step(
                "On the SSO tab, enter:",
                (
                    Field("Redirect URIs", "$redirect_uri"),
                    Field("Client Authentication Type", "Client Secret Basic"),
                ),
            ),
            Step(
                "Under Attribute Mapping select the standard scopes email and profile; to send "
                "groups check “Include group attribute” with the name groups."
            ),
            Step("Click Activate and bind the user groups who should sign in."),
        ),
        "JumpCloud shows the Client ID and Client Secret once, when you activate.",
        example="https://oauth.id.jumpcloud.com/",
    ),
)

PINGONE = Provider(
    "pingone",
    "PingOne",
    saml=Guide(
        "PingOneSAML",
        (
            Step(
                "In the PingOne admin console, open Applications → Applications and click +. "
                "Enter an Application name, choose SAML Application and click Configure."
            ),
            Step(
                "Under SAML Configuration choose Manually Enter and enter:",
                (Field("ACS URLs", "$acs_url"), Field("Entity ID", "$sp_entity_id")),
                note="Click Save. (Import From URL with the SP metadata URL works too.)",
            ),
            Step(
                "On the Configuration tab, click Edit and set:",
                (Field("Subject NameID Format", NAME_ID_EMAIL),),
            ),
            Step(
                "On the Attribute Mappings tab, map saml_subject to Email Address and add:",
                attributes=attrs(("Email Address", "Given Name", "Family Name", "Group Names")),
            ),
            Step(
                "On the Access tab choose the groups who may sign in, then turn the application "
                "on with its toggle."
            ),
        ),
        "On the Configuration tab, copy the IDP Metadata URL.",
        example="https://auth.pingone.com/<environment-id>/saml20/metadata/<application-id>",
    ),
    oidc=Guide(
        "PingOneOIDC",
        (
            Step(
                "In the PingOne admin console, open Applications → Applications, click +, name "
                "the application, choose OIDC Web App and Save."
            ),
            Step(
                "On the Configuration tab click Edit and enter:",
                (
                    Field("Redirect URIs", "$redirect_uri"),
                    Field("Token Endpoint Authentication Method", "Client Secret Basic"),
                ),
            ),
            Step("On the Resources tab allow the scopes email and profile."),
            Step("On the Access tab choose who may sign in, then turn the application on."),
        ),
        "On the Configuration tab copy the Client ID, Client Secret and Issuer.",
        example="https://auth.pingone.com/<environment-id>/as",
    ),
)


AUTH0 = Provider(
    "auth0",
    "Auth0",
    saml=Guide(
        "Auth0SAML",
        (
            Step(
                "In the Auth0 Dashboard, open Applications → Applications, click Create "
                "Application and choose Regular Web Applications."
            ),
            Step(
                "On the Addons tab enable SAML2 Web App. On its Settings tab enter:",
                (
                    Field("Application Callback URL", "$acs_url"),
                    Field("Settings", "$auth0_settings"),
                ),
                note="Click Enable (or Save).",
            ),
            Step(
                "Auth0 already sends these attributes:",
                attributes=attrs(
                    ("email", "given_name", "family_name", ""),
                    (CLAIMS + "emailaddress", CLAIMS + "givenname", CLAIMS + "surname", ""),
                ),
            ),
            Step("On the application's Connections tab, enable the user directories to use."),
        ),
        "On the SAML2 Web App addon's Usage tab, copy the link of Identity Provider Metadata.",
        example="https://your-tenant.auth0.com/samlp/metadata/<client-id>",
    ),
    oidc=Guide(
        "Auth0OIDC",
        (
            Step(
                "In the Auth0 Dashboard, open Applications → Applications, click Create "
                "Application and choose Regular Web Applications."
            ),
            Step(
                "On the Settings tab, enter:",
                (Field("Allowed Callback URLs", "$redirect_uri"),),
                note="Click Save Changes.",
            ),
        ),
        "On the Settings tab copy the Client ID and Client Secret. The issuer is your Domain "
        "with https:// and a trailing slash.",
        example="https://your-tenant.auth0.com/",
    ),
)
