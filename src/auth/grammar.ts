// The header and path grammars of scheme v1 (docs/design.md, "Scheme v1"), which v2's keyid and
// path, the settings and the keyring share: data only, applied after the runtime's normalization.

export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const TIMESTAMP_PATTERN = /^[0-9]{1,16}$/;
export const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;
export const AGENT_PATH_PATTERN = /^\/agent(\/[A-Za-z0-9._~-]+)+\/?$/;

/** The client id's and the path's grammars in words, for the refusals of both schemes (keep them beside the patterns). */
export const CLIENT_ID_RULE = "must be 1 to 64 characters of A-Z a-z 0-9 . _ -";
export const PATH_RULE = "must be /agent/ then segments of A-Z a-z 0-9 . _ ~ - joined by single slashes (no percent-encoding)";
