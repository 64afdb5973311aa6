export {
	signRequest,
	type SignRequestInput,
	type SignedHeaders,
	type SignedRequestParts,
	type SignRequestV2Input,
	type SignedHeadersV2,
	type SignedRequestPartsV2,
} from "./sign.ts";
export { canonicalString, sha256Hex } from "../auth/crypto.ts";
export { rateLimitInfo, type RateLimitInfo, type ServiceLimit } from "./rate-limit.ts";
