//! RADIUS packets as this client needs them: the Access-Request it sends
//! (RFC 2865 §4.1, User-Password hidden per §5.2, Message-Authenticator
//! per RFC 3579 §3.2 first), and the checks every reply must pass before
//! it is believed.
//!
//! Everything here is pure (no I/O, no clock, no randomness), so the RFC
//! test vectors and the malformed-packet tests run against it directly.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// Packet codes (RFC 2865 §3).
pub const ACCESS_REQUEST: u8 = 1;
pub const ACCESS_ACCEPT: u8 = 2;
pub const ACCESS_REJECT: u8 = 3;
pub const ACCESS_CHALLENGE: u8 = 11;

/// Attribute types.
pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const NAS_IDENTIFIER: u8 = 32;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;

/// Header: code, identifier, length (2), authenticator (16).
pub const HEADER_LEN: usize = 20;
/// The largest packet RFC 2865 §3 allows.
pub const MAX_PACKET_LEN: usize = 4096;
/// The longest User-Password before hiding (RFC 2865 §5.2).
pub const MAX_PASSWORD_LEN: usize = 128;
/// The longest value of one attribute.
pub const MAX_VALUE_LEN: usize = 253;

const AUTH_LEN: usize = 16;
/// Offset of the Message-Authenticator's value in our requests, where it
/// is the first attribute.
const REQUEST_MA_OFFSET: usize = HEADER_LEN + 2;

type HmacMd5 = Hmac<Md5>;

/// Why a request could not be encoded: nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    EmptyUserName,
    UserNameTooLong,
    EmptyPassword,
    PasswordTooLong,
    NasIdentifierTooLong,
}

/// What a server decided, once its reply is proven to come from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
    /// Access-Challenge: the server wants another round trip (a token,
    /// EAP). This client speaks PAP only, so the caller treats it as a
    /// rejection.
    Challenge,
}

/// Why a datagram is not a valid reply to our request: it is dropped as
/// if it had never arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// Fewer than 20 octets.
    Short,
    /// The Length field is below 20, above 4096 or past the datagram.
    BadLength,
    /// An attribute's length is below 2 or runs past the packet.
    BadAttribute,
    /// Not Access-Accept, Access-Reject or Access-Challenge.
    UnexpectedCode(u8),
    /// The reply answers another request.
    WrongIdentifier,
    /// The Response Authenticator does not verify.
    BadResponseAuthenticator,
    /// No Message-Authenticator (required in every reply: BlastRADIUS,
    /// CVE-2024-3596).
    MissingMessageAuthenticator,
    /// More than one, or not 16 octets.
    MalformedMessageAuthenticator,
    /// The Message-Authenticator does not verify.
    BadMessageAuthenticator,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Short => f.write_str("datagram shorter than a RADIUS header"),
            ReplyError::BadLength => f.write_str("invalid Length field"),
            ReplyError::BadAttribute => f.write_str("malformed attribute"),
            ReplyError::UnexpectedCode(code) => write!(f, "unexpected packet code {code}"),
            ReplyError::WrongIdentifier => f.write_str("identifier of another request"),
            ReplyError::BadResponseAuthenticator => {
                f.write_str("Response Authenticator does not verify (wrong shared secret?)")
            }
            ReplyError::MissingMessageAuthenticator => {
                f.write_str("no Message-Authenticator in the reply (required against BlastRADIUS)")
            }
            ReplyError::MalformedMessageAuthenticator => {
                f.write_str("malformed or repeated Message-Authenticator")
            }
            ReplyError::BadMessageAuthenticator => {
                f.write_str("Message-Authenticator does not verify (wrong shared secret?)")
            }
        }
    }
}

/// User-Password hidden as RFC 2865 §5.2 says: the password padded with
/// zeros to a multiple of 16 octets, each block XORed with
/// MD5(secret + previous cipher block), the first with MD5(secret + Request
/// Authenticator).
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    authenticator: &[u8; AUTH_LEN],
) -> Result<Vec<u8>, EncodeError> {
    if password.is_empty() {
        return Err(EncodeError::EmptyPassword);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(EncodeError::PasswordTooLong);
    }
    let padded_len = password.len().div_ceil(AUTH_LEN) * AUTH_LEN;
    let mut out = vec![0u8; padded_len];
    out[..password.len()].copy_from_slice(password);
    let mut previous: [u8; AUTH_LEN] = *authenticator;
    for block in out.chunks_mut(AUTH_LEN) {
        let mut md5 = Md5::new();
        md5.update(secret);
        md5.update(previous);
        let key = md5.finalize();
        for (byte, k) in block.iter_mut().zip(key.iter()) {
            *byte ^= k;
        }
        previous.copy_from_slice(block);
    }
    Ok(out)
}

fn push_attribute(packet: &mut Vec<u8>, kind: u8, value: &[u8]) {
    // Callers keep every value within 253 octets.
    let len = u8::try_from(value.len() + 2).unwrap_or(u8::MAX);
    packet.push(kind);
    packet.push(len);
    packet.extend_from_slice(value);
}

fn hmac_md5(secret: &[u8], data: &[u8]) -> [u8; AUTH_LEN] {
    // HMAC takes a key of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = HmacMd5::new_from_slice(secret) else {
        return [0; AUTH_LEN];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Whether an Access-Request with these values can be encoded: a
/// User-Name of 1 to 253 octets, a password of 1 to 128, a NAS-Identifier
/// of at most 253.
pub fn check_request(
    user_name: &[u8],
    password: &[u8],
    nas_identifier: &[u8],
) -> Result<(), EncodeError> {
    if user_name.is_empty() {
        return Err(EncodeError::EmptyUserName);
    }
    if user_name.len() > MAX_VALUE_LEN {
        return Err(EncodeError::UserNameTooLong);
    }
    if password.is_empty() {
        return Err(EncodeError::EmptyPassword);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(EncodeError::PasswordTooLong);
    }
    if nas_identifier.len() > MAX_VALUE_LEN {
        return Err(EncodeError::NasIdentifierTooLong);
    }
    Ok(())
}

/// An Access-Request carrying User-Name, the hidden User-Password and
/// NAS-Identifier, with a Message-Authenticator as its FIRST attribute
/// (RFC 3579 §3.2; first, so that nothing an attacker controls precedes
/// it: the BlastRADIUS mitigation).
pub fn encode_access_request(
    identifier: u8,
    authenticator: &[u8; AUTH_LEN],
    secret: &[u8],
    user_name: &[u8],
    password: &[u8],
    nas_identifier: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    check_request(user_name, password, nas_identifier)?;
    let hidden = hide_password(password, secret, authenticator)?;

    let mut packet = Vec::with_capacity(
        HEADER_LEN + 18 + 2 + user_name.len() + 2 + hidden.len() + 2 + nas_identifier.len(),
    );
    packet.push(ACCESS_REQUEST);
    packet.push(identifier);
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(authenticator);
    push_attribute(&mut packet, MESSAGE_AUTHENTICATOR, &[0; AUTH_LEN]);
    push_attribute(&mut packet, USER_NAME, user_name);
    push_attribute(&mut packet, USER_PASSWORD, &hidden);
    if !nas_identifier.is_empty() {
        push_attribute(&mut packet, NAS_IDENTIFIER, nas_identifier);
    }
    // At most 20 + 18 + 255 + 130 + 255 octets: well within 4096.
    let len = u16::try_from(packet.len()).unwrap_or(u16::MAX);
    packet[2..4].copy_from_slice(&len.to_be_bytes());
    let mac = hmac_md5(secret, &packet);
    packet[REQUEST_MA_OFFSET..REQUEST_MA_OFFSET + AUTH_LEN].copy_from_slice(&mac);
    Ok(packet)
}

/// Response Authenticator (RFC 2865 §3): MD5(Code + Identifier + Length +
/// Request Authenticator + Attributes + Secret).
pub fn response_authenticator(
    packet: &[u8],
    request_authenticator: &[u8; AUTH_LEN],
    secret: &[u8],
) -> [u8; AUTH_LEN] {
    let mut md5 = Md5::new();
    md5.update(&packet[..4]);
    md5.update(request_authenticator);
    md5.update(&packet[HEADER_LEN..]);
    md5.update(secret);
    md5.finalize().into()
}

/// Message-Authenticator of a reply (RFC 3579 §3.2): HMAC-MD5 keyed by the
/// secret over the packet with the Request Authenticator in place of the
/// Response Authenticator and the attribute's value zeroed. `ma_offset` is
/// where the value starts.
pub fn reply_message_authenticator(
    packet: &[u8],
    ma_offset: usize,
    request_authenticator: &[u8; AUTH_LEN],
    secret: &[u8],
) -> [u8; AUTH_LEN] {
    let mut copy = packet.to_vec();
    copy[4..HEADER_LEN].copy_from_slice(request_authenticator);
    copy[ma_offset..ma_offset + AUTH_LEN].fill(0);
    hmac_md5(secret, &copy)
}

/// Checks a datagram received for our request (`identifier`,
/// `request_authenticator`) and says what the server decided. Octets past
/// the Length field are padding and ignored (RFC 2865 §3).
pub fn verify_reply(
    datagram: &[u8],
    identifier: u8,
    request_authenticator: &[u8; AUTH_LEN],
    secret: &[u8],
) -> Result<Verdict, ReplyError> {
    if datagram.len() < HEADER_LEN {
        return Err(ReplyError::Short);
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) || length > datagram.len() {
        return Err(ReplyError::BadLength);
    }
    let packet = &datagram[..length];
    let verdict = match packet[0] {
        ACCESS_ACCEPT => Verdict::Accept,
        ACCESS_REJECT => Verdict::Reject,
        ACCESS_CHALLENGE => Verdict::Challenge,
        other => return Err(ReplyError::UnexpectedCode(other)),
    };
    if packet[1] != identifier {
        return Err(ReplyError::WrongIdentifier);
    }

    let mut ma_offset = None;
    let mut at = HEADER_LEN;
    while at < packet.len() {
        if at + 2 > packet.len() {
            return Err(ReplyError::BadAttribute);
        }
        let kind = packet[at];
        let len = usize::from(packet[at + 1]);
        if len < 2 || at + len > packet.len() {
            return Err(ReplyError::BadAttribute);
        }
        if kind == MESSAGE_AUTHENTICATOR {
            if len != 2 + AUTH_LEN || ma_offset.is_some() {
                return Err(ReplyError::MalformedMessageAuthenticator);
            }
            ma_offset = Some(at + 2);
        }
        at += len;
    }

    let expected = response_authenticator(packet, request_authenticator, secret);
    if !bool::from(expected.ct_eq(&packet[4..HEADER_LEN])) {
        return Err(ReplyError::BadResponseAuthenticator);
    }
    let Some(ma_offset) = ma_offset else {
        return Err(ReplyError::MissingMessageAuthenticator);
    };
    let expected = reply_message_authenticator(packet, ma_offset, request_authenticator, secret);
    if !bool::from(expected.ct_eq(&packet[ma_offset..ma_offset + AUTH_LEN])) {
        return Err(ReplyError::BadMessageAuthenticator);
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// RFC 2865 §7.1.
    const RFC_SECRET: &[u8] = b"xyzzy5461";
    const RFC_REQUEST_AUTH: &str = "0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a";

    fn rfc_authenticator() -> [u8; 16] {
        hex(RFC_REQUEST_AUTH).try_into().unwrap()
    }

    /// A reply as a server would build it: `attributes` after the header,
    /// a Message-Authenticator appended when `sign`, both authenticators
    /// computed.
    fn build_reply(
        code: u8,
        identifier: u8,
        request_authenticator: &[u8; 16],
        attributes: &[u8],
        secret: &[u8],
        sign: bool,
    ) -> Vec<u8> {
        let mut packet = vec![code, identifier, 0, 0];
        packet.extend_from_slice(request_authenticator);
        packet.extend_from_slice(attributes);
        let ma_offset = packet.len() + 2;
        if sign {
            push_attribute(&mut packet, MESSAGE_AUTHENTICATOR, &[0; 16]);
        }
        let len = u16::try_from(packet.len()).unwrap();
        packet[2..4].copy_from_slice(&len.to_be_bytes());
        if sign {
            let mac = hmac_md5(secret, &packet);
            packet[ma_offset..ma_offset + 16].copy_from_slice(&mac);
        }
        let response = response_authenticator(&packet, request_authenticator, secret);
        packet[4..20].copy_from_slice(&response);
        packet
    }

    #[test]
    fn hides_the_rfc_2865_example_password() {
        let hidden = hide_password(b"arctangent", RFC_SECRET, &rfc_authenticator()).unwrap();
        assert_eq!(
            hidden,
            hex("0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee")
        );
    }

    #[test]
    fn verifies_the_rfc_2865_example_response_authenticator() {
        // The Access-Accept of RFC 2865 §7.1 (Service-Type, Login-Service,
        // Login-IP-Host), which predates the Message-Authenticator.
        let accept = hex(
            "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2 \
             06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03",
        );
        assert_eq!(
            response_authenticator(&accept, &rfc_authenticator(), RFC_SECRET).as_slice(),
            &accept[4..20]
        );
        // Authentic, yet refused: it carries no Message-Authenticator.
        assert_eq!(
            verify_reply(&accept, 0, &rfc_authenticator(), RFC_SECRET),
            Err(ReplyError::MissingMessageAuthenticator)
        );
    }

    #[test]
    fn hides_long_passwords_in_chained_blocks() {
        let auth = rfc_authenticator();
        let password = [b'x'; 40];
        let hidden = hide_password(&password, RFC_SECRET, &auth).unwrap();
        assert_eq!(hidden.len(), 48);
        // Undo it the way a server does.
        let mut previous = auth.to_vec();
        let mut clear = Vec::new();
        for block in hidden.chunks(16) {
            let key = Md5::new()
                .chain_update(RFC_SECRET)
                .chain_update(&previous)
                .finalize();
            clear.extend(block.iter().zip(key.iter()).map(|(c, k)| c ^ k));
            previous = block.to_vec();
        }
        assert_eq!(&clear[..40], &password);
        assert!(clear[40..].iter().all(|&b| b == 0));

        assert_eq!(
            hide_password(&[b'x'; 128], RFC_SECRET, &auth).map(|h| h.len()),
            Ok(128)
        );
        assert_eq!(
            hide_password(&[b'x'; 129], RFC_SECRET, &auth),
            Err(EncodeError::PasswordTooLong)
        );
        assert_eq!(
            hide_password(b"", RFC_SECRET, &auth),
            Err(EncodeError::EmptyPassword)
        );
    }

    #[test]
    fn request_carries_a_valid_message_authenticator_first() {
        let auth = rfc_authenticator();
        let packet =
            encode_access_request(7, &auth, RFC_SECRET, b"nemo", b"arctangent", b"twofold")
                .unwrap();
        assert_eq!(packet[0], ACCESS_REQUEST);
        assert_eq!(packet[1], 7);
        assert_eq!(
            usize::from(u16::from_be_bytes([packet[2], packet[3]])),
            packet.len()
        );
        assert_eq!(&packet[4..20], &auth);
        // First attribute: Message-Authenticator.
        assert_eq!(packet[20], MESSAGE_AUTHENTICATOR);
        assert_eq!(packet[21], 18);
        let mut zeroed = packet.clone();
        zeroed[22..38].fill(0);
        assert_eq!(hmac_md5(RFC_SECRET, &zeroed).as_slice(), &packet[22..38]);
        // Then the RFC's User-Name and hidden User-Password, then NAS-Identifier.
        assert_eq!(&packet[38..44], &hex("01 06 6e 65 6d 6f"));
        assert_eq!(
            &packet[44..62],
            &hex("02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee")
        );
        assert_eq!(&packet[62..], b"\x20\x09twofold");
    }

    #[test]
    fn refuses_to_encode_what_cannot_be_sent() {
        let auth = [0; 16];
        let enc = |user: &[u8], password: &[u8], nas: &[u8]| {
            encode_access_request(0, &auth, b"s", user, password, nas)
        };
        assert_eq!(enc(b"", b"p", b"n"), Err(EncodeError::EmptyUserName));
        assert_eq!(
            enc(&[b'u'; 254], b"p", b"n"),
            Err(EncodeError::UserNameTooLong)
        );
        assert!(enc(&[b'u'; 253], &[b'p'; 128], &[b'n'; 253]).is_ok());
        assert_eq!(
            enc(b"u", &[b'p'; 129], b"n"),
            Err(EncodeError::PasswordTooLong)
        );
        assert_eq!(
            enc(b"u", b"p", &[b'n'; 254]),
            Err(EncodeError::NasIdentifierTooLong)
        );
    }

    #[test]
    fn accepts_signed_replies_of_each_code() {
        let auth = [9; 16];
        for (code, verdict) in [
            (ACCESS_ACCEPT, Verdict::Accept),
            (ACCESS_REJECT, Verdict::Reject),
            (ACCESS_CHALLENGE, Verdict::Challenge),
        ] {
            let reply = build_reply(code, 42, &auth, b"\x12\x05abc", b"secret", true);
            assert_eq!(verify_reply(&reply, 42, &auth, b"secret"), Ok(verdict));
            // Trailing padding past Length is ignored.
            let mut padded = reply.clone();
            padded.extend_from_slice(&[0xff; 7]);
            assert_eq!(verify_reply(&padded, 42, &auth, b"secret"), Ok(verdict));
        }
    }

    #[test]
    fn refuses_replies_that_do_not_prove_their_origin() {
        let auth = [9; 16];
        let secret = b"secret";
        let good = build_reply(ACCESS_ACCEPT, 1, &auth, b"", secret, true);

        assert_eq!(
            verify_reply(&good, 2, &auth, secret),
            Err(ReplyError::WrongIdentifier)
        );
        assert_eq!(
            verify_reply(&good, 1, &[8; 16], secret),
            Err(ReplyError::BadResponseAuthenticator)
        );
        assert_eq!(
            verify_reply(&good, 1, &auth, b"other"),
            Err(ReplyError::BadResponseAuthenticator)
        );

        let unsigned = build_reply(ACCESS_ACCEPT, 1, &auth, b"", secret, false);
        assert_eq!(
            verify_reply(&unsigned, 1, &auth, secret),
            Err(ReplyError::MissingMessageAuthenticator)
        );

        // A wrong Message-Authenticator under a correct Response
        // Authenticator (what a forger who knows only the MD5 trick makes).
        let mut forged = good.clone();
        forged[22] ^= 1;
        let response = response_authenticator(&forged, &auth, secret);
        forged[4..20].copy_from_slice(&response);
        assert_eq!(
            verify_reply(&forged, 1, &auth, secret),
            Err(ReplyError::BadMessageAuthenticator)
        );

        // Two Message-Authenticators, or one of the wrong size.
        let twice = build_reply(
            ACCESS_ACCEPT,
            1,
            &auth,
            &[&[80u8, 18][..], &[0; 16]].concat(),
            secret,
            true,
        );
        assert_eq!(
            verify_reply(&twice, 1, &auth, secret),
            Err(ReplyError::MalformedMessageAuthenticator)
        );
        let short_ma = build_reply(ACCESS_ACCEPT, 1, &auth, b"\x50\x04ab", secret, false);
        assert_eq!(
            verify_reply(&short_ma, 1, &auth, secret),
            Err(ReplyError::MalformedMessageAuthenticator)
        );

        // Not a reply to an Access-Request.
        let mut request = good.clone();
        request[0] = ACCESS_REQUEST;
        assert_eq!(
            verify_reply(&request, 1, &auth, secret),
            Err(ReplyError::UnexpectedCode(1))
        );
    }

    #[test]
    fn refuses_malformed_packets() {
        let auth = [9; 16];
        let secret = b"secret";
        let good = build_reply(ACCESS_ACCEPT, 1, &auth, b"\x12\x05abc", secret, true);

        assert_eq!(verify_reply(&[], 1, &auth, secret), Err(ReplyError::Short));
        assert_eq!(
            verify_reply(&good[..19], 1, &auth, secret),
            Err(ReplyError::Short)
        );
        let with_length = |len: u16| {
            let mut p = good.clone();
            p[2..4].copy_from_slice(&len.to_be_bytes());
            p
        };
        for len in [
            0,
            19,
            u16::try_from(good.len() + 1).unwrap(),
            4097,
            u16::MAX,
        ] {
            assert_eq!(
                verify_reply(&with_length(len), 1, &auth, secret),
                Err(ReplyError::BadLength),
                "length {len}"
            );
        }
        // Attribute lengths 0, 1, and one that runs past the packet; and a
        // lone type octet at the end.
        for attributes in [&b"\x12\x00"[..], b"\x12\x01", b"\x12\x09abc", b"\x12"] {
            let mut p = vec![ACCESS_ACCEPT, 1, 0, 0];
            p.extend_from_slice(&auth);
            p.extend_from_slice(attributes);
            let len = u16::try_from(p.len()).unwrap();
            p[2..4].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                verify_reply(&p, 1, &auth, secret),
                Err(ReplyError::BadAttribute),
                "{attributes:?}"
            );
        }
    }

    #[test]
    fn random_and_mutated_datagrams_never_verify_or_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2865);
        let auth = [9; 16];
        let secret = b"secret";
        let good = build_reply(ACCESS_ACCEPT, 1, &auth, b"\x12\x05abc", secret, true);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..200);
            let mut random = vec![0u8; len];
            rng.fill_bytes(&mut random);
            if len >= 4 && rng.gen_bool(0.5) {
                // A plausible header, to get past the first checks.
                random[0] = ACCESS_ACCEPT;
                random[1] = 1;
                random[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            }
            assert!(verify_reply(&random, 1, &auth, secret).is_err());

            let mut mutated = good.clone();
            let at = rng.gen_range(0..mutated.len());
            let flip = rng.gen_range(1..=255u8);
            mutated[at] ^= flip;
            let truncated = rng.gen_range(0..=mutated.len());
            assert!(verify_reply(&mutated, 1, &auth, secret).is_err());
            assert!(verify_reply(&mutated[..truncated], 1, &auth, secret).is_err());
        }
    }
}
