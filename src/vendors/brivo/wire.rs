//! Brivo wire facts shared by the client and the simulator: paths, limits, headers and the live
//! error messages. Each fact says where it comes from; the INFERRED ones are guesses kept here so
//! that a correction is one edit.
//!
//! Sources: vendor-apis.md §4 (Brivo's own API reference) and the 2017 production recordings
//! (recorded/brivo/rec-*.json).

use super::BrivoMobilePassTarget;

/// Header carrying the Mashery API key on every call, token calls included (docs + recordings).
pub const API_KEY_HEADER: &str = "api-key";

/// Token endpoint path under the auth host (`https://auth.brivo.com/oauth/token`).
pub const TOKEN_PATH: [&str; 2] = ["oauth", "token"];

/// Page size when none is asked for, and the documented maximum.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

/// Brivo refuses to put a user in more than this many groups (documented on `POST /users/{id}/groups`).
pub const MAX_GROUPS_PER_USER: usize = 16;

/// Type given to the email and phone number we create (Brivo stores free strings; "work" is what
/// the documentation examples and clients use).
pub const CONTACT_TYPE: &str = "work";

/// Live 404 messages (recordings rec-02/rec-07 and rec-13; the docs say "User not found" /
/// "Group not found", the wire said these).
pub const USER_NOT_FOUND: &str = "Requested user not found";
pub const UNKNOWN_GROUP: &str = "Unknown Group";

/// Mashery's answer (HTML, 403) when the API key is missing or not active (docs).
pub const DEVELOPER_INACTIVE: &str = "Developer Inactive";

/// Documented 400 messages.
pub const INVALID_FILTER: &str = "Invalid filter format";
pub const INVALID_CRITERIA: &str = "Invalid criteria provided";

/// Documented digital-invitation conflicts: 409 (a pending invitation exists) and 412 (no passes).
pub const PENDING_INVITATION: &str =
    "There is already a pending invitation for the cardHolder. No new invitation will be generated";
pub const NO_PASSES_LEFT: &str = "You don't have any Brivo Wallet Passes available.";

/// INFERRED: the body Brivo sends when `PUT /groups/{g}/users/{u}` would give the user a 17th
/// group. The cap is documented, its error body on this endpoint is not; we assume the documented
/// `{code, message}` shape with status 400. The client does not depend on this text: any 400 on that
/// call is reported as a refusal that names the cap.
pub const GROUP_CAP_MESSAGE: &str = "A user can be a member of at most 16 groups";

/// INFERRED: the 404 body of `DELETE /groups/{g}/users/{u}` for a user who is not a member.
pub const NOT_A_MEMBER: &str = "User is not a member of the group";

/// Query of `POST /users/{id}/credentials/digital-invitations`; all three parameters are marked
/// required in the reference.
///
/// INFERRED for [`BrivoMobilePassTarget::BrandedApp`]: the integration guide only says passes are
/// "assigned in the OfficeRnD Branded App"; the most likely shape is the same invitation with
/// `sendInvitationEmail=false`, so Brivo sends no email and the branded app redeems the invitation.
pub fn invitation_query(target: BrivoMobilePassTarget) -> [(&'static str, &'static str); 3] {
    let send_email = match target {
        BrivoMobilePassTarget::BrivoApp => "true",
        BrivoMobilePassTarget::BrandedApp => "false",
    };
    [
        ("sendInvitationEmail", send_email),
        ("nfcEnabled", "false"),
        ("language", "en"),
    ]
}
