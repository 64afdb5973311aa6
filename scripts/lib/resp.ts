import net from "node:net";

/** A Redis error reply (`-ERR ...`), kept as a value so a pipeline can carry it in place. */
export class RespError {
	readonly message: string;
	constructor(message: string) {
		this.message = message;
	}
}

export type RespValue = string | Buffer | number | null | RespError | RespValue[];

/**
 * A minimal RESP2 client over one connection: each `send` writes its commands in one
 * write, so a MULTI ... EXEC block is never interleaved with another request's commands,
 * and replies are matched to callers in order.
 */
export class RespConnection {
	private buffer: Buffer = Buffer.alloc(0);
	private readonly waiting: { count: number; replies: RespValue[]; resolve: (v: RespValue[]) => void; reject: (e: Error) => void }[] = [];
	private closedError: Error | null = null;

	private readonly socket: net.Socket;

	private constructor(socket: net.Socket) {
		this.socket = socket;
		socket.on("data", (chunk) => this.onData(chunk));
		const fail = (error: Error) => {
			this.closedError = error;
			for (const pending of this.waiting.splice(0)) pending.reject(error);
		};
		socket.on("error", fail);
		socket.on("close", () => fail(new Error("redis connection closed")));
	}

	static connect(port: number, host = "127.0.0.1"): Promise<RespConnection> {
		return new Promise((resolve, reject) => {
			const socket = net.createConnection({ port, host });
			socket.setNoDelay(true);
			socket.once("connect", () => {
				socket.removeListener("error", reject);
				resolve(new RespConnection(socket));
			});
			socket.once("error", reject);
		});
	}

	get closed(): boolean {
		return this.closedError !== null;
	}

	send(commands: readonly (readonly string[])[]): Promise<RespValue[]> {
		if (this.closedError !== null) return Promise.reject(this.closedError);
		if (commands.length === 0) return Promise.resolve([]);
		return new Promise((resolve, reject) => {
			this.waiting.push({ count: commands.length, replies: [], resolve, reject });
			this.socket.write(Buffer.concat(commands.map(encodeCommand)));
		});
	}

	close(): void {
		this.socket.destroy();
	}

	private onData(chunk: Buffer): void {
		this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
		for (;;) {
			const parsed = parseReply(this.buffer, 0);
			if (parsed === undefined) return;
			this.buffer = this.buffer.subarray(parsed.next);
			const pending = this.waiting[0];
			if (pending === undefined) continue;
			pending.replies.push(parsed.value);
			if (pending.replies.length === pending.count) {
				this.waiting.shift();
				pending.resolve(pending.replies);
			}
		}
	}
}

function encodeCommand(args: readonly string[]): Buffer {
	const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
	for (const arg of args) {
		const bytes = Buffer.from(arg, "utf8");
		parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
	}
	return Buffer.concat(parts);
}

/** Parses one reply at `offset`; undefined when the buffer does not hold all of it yet. */
function parseReply(buffer: Buffer, offset: number): { value: RespValue; next: number } | undefined {
	if (offset >= buffer.length) return undefined;
	const lineEnd = buffer.indexOf("\r\n", offset);
	if (lineEnd === -1) return undefined;
	const type = String.fromCharCode(buffer[offset]!);
	const line = buffer.toString("utf8", offset + 1, lineEnd);
	const next = lineEnd + 2;
	switch (type) {
		case "+":
			return { value: line, next };
		case "-":
			return { value: new RespError(line), next };
		case ":":
			return { value: Number(line), next };
		case "$": {
			const length = Number(line);
			if (length < 0) return { value: null, next };
			if (buffer.length < next + length + 2) return undefined;
			return { value: Buffer.from(buffer.subarray(next, next + length)), next: next + length + 2 };
		}
		case "*": {
			const count = Number(line);
			if (count < 0) return { value: null, next };
			const items: RespValue[] = [];
			let cursor = next;
			for (let i = 0; i < count; i++) {
				const item = parseReply(buffer, cursor);
				if (item === undefined) return undefined;
				items.push(item.value);
				cursor = item.next;
			}
			return { value: items, next: cursor };
		}
		default:
			throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
	}
}
