export { signRequest, type SignRequestInput, type SignedHeaders, type SignedRequestParts } from "./sign.ts";
export { canonicalString, sha256Hex } from "../auth/crypto.ts";
