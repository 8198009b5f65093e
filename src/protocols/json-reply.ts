// The HTTP answer both protocols give: always 200 with a JSON envelope (TENCENT-API §1.4, §2.6).

export interface JsonReply {
  /** §2.6: API-level errors are 200 too; clients only read the envelope on 200. */
  readonly status: 200;
  /** §2.6: exactly `application/json`; with a charset the Python SDK and tccli miss errors. */
  readonly headers: { readonly 'Content-Type': 'application/json' };
  readonly body: string;
}

/** Receives unexpected failures before they are rendered as an opaque InternalError. */
export type ErrorLog = (message: string, error: unknown) => void;

export const jsonReply = (envelope: unknown): JsonReply => ({
  status: 200,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(envelope),
});
