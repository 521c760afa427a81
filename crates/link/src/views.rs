//! The public SDK's answers (`twofold_proto`) back into the engine's types,
//! for [`RemoteVerifier`](crate::RemoteVerifier): `twofold_proto` knows
//! nothing of the engine, so the conversions live here.

use twofold_core::challenge::{ChallengeState, PhoneChoice, Prompt};
use twofold_proto::{AuthenticationPrompt, AuthenticationState, PhoneChoiceView};

pub fn challenge_state(s: AuthenticationState) -> ChallengeState {
    match s {
        AuthenticationState::Pending => ChallengeState::Pending,
        AuthenticationState::Accepted => ChallengeState::Accepted,
        AuthenticationState::Rejected => ChallengeState::Rejected,
        AuthenticationState::Expired => ChallengeState::Expired,
    }
}

pub fn prompt(p: AuthenticationPrompt) -> Prompt {
    match p {
        AuthenticationPrompt::Passcode => Prompt::Passcode,
        AuthenticationPrompt::PhoneCall => Prompt::PhoneCall,
        AuthenticationPrompt::SmsReply => Prompt::SmsReply,
        AuthenticationPrompt::MobileApp => Prompt::MobileApp,
    }
}

pub fn phone_choice(p: PhoneChoice) -> PhoneChoiceView {
    match p {
        PhoneChoice::Primary => PhoneChoiceView::Primary,
        PhoneChoice::Backup => PhoneChoiceView::Backup,
    }
}
