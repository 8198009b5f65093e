// Typed readers for action parameters. JSON bodies carry native types; form-encoded ones carry
// strings (TENCENT-API §2.2: `Limit=20`, Python's `True`), so scalars are coerced here.
import { ApiError, type ErrorCode } from '../shared/errors.ts';

/** Which codes a product uses for malformed values (EdgeOne and CDN differ). */
export interface FieldErrors {
  readonly invalid: ErrorCode;
}

export const TEO_FIELDS: FieldErrors = { invalid: 'InvalidParameter.ParameterError' };
export const CDN_FIELDS: FieldErrors = { invalid: 'InvalidParameter.CdnParamError' };

export type Reader<T> = (value: unknown, name: string, e: FieldErrors) => T;

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

export const str =
  (opts: { max?: number } = {}): Reader<string> =>
  (v, name, e) => {
    if (typeof v !== 'string') throw new ApiError(e.invalid, `${name} must be a string`);
    if (CONTROL.test(v)) throw new ApiError(e.invalid, `${name} contains a control character`);
    if (opts.max !== undefined && v.length > opts.max) throw new ApiError(e.invalid, `${name} is longer than ${opts.max} characters`);
    return v;
  };

export const oneOf =
  <const T extends string>(values: readonly T[]): Reader<T> =>
  (v, name, e) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      throw new ApiError(e.invalid, `${name} must be one of ${values.join(', ')}`);
    }
    return v as T;
  };

export const int =
  (opts: { min?: number; max?: number } = {}): Reader<number> =>
  (v, name, e) => {
    const n = typeof v === 'string' && /^-?\d{1,15}$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new ApiError(e.invalid, `${name} must be an integer`);
    if (opts.min !== undefined && n < opts.min) throw new ApiError(e.invalid, `${name} must be at least ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) throw new ApiError(e.invalid, `${name} must be at most ${opts.max}`);
    return n;
  };

export const bool = (): Reader<boolean> => (v, name, e) => {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
  }
  if (v === 1 || v === 0) return v === 1;
  throw new ApiError(e.invalid, `${name} must be a boolean`);
};

export const array =
  <T>(item: Reader<T>, opts: { max?: number; nonEmpty?: boolean } = {}): Reader<T[]> =>
  (v, name, e) => {
    if (!Array.isArray(v)) throw new ApiError(e.invalid, `${name} must be an array`);
    if (opts.nonEmpty && v.length === 0) throw new ApiError(e.invalid, `${name} must not be empty`);
    if (opts.max !== undefined && v.length > opts.max) throw new ApiError(e.invalid, `${name} has more than ${opts.max} entries`);
    return v.map((x, i) => item(x, `${name}.${i}`, e));
  };

/** Raw targets are checked one by one by the purge domain, which knows each type's rules. */
export const anyArray = (): Reader<unknown[]> => (v, name, e) => {
  if (!Array.isArray(v)) throw new ApiError(e.invalid, `${name} must be an array`);
  return v;
};

type Shape = Record<string, { read: Reader<unknown>; required?: boolean }>;
type Out<S extends Shape> = {
  [K in keyof S]: S[K] extends { read: Reader<infer T>; required: true } ? T : (S[K] extends { read: Reader<infer T> } ? T : never) | undefined;
};

export const req = <T>(read: Reader<T>) => ({ read, required: true as const });
export const opt = <T>(read: Reader<T>) => ({ read });

export const object =
  <S extends Shape>(shape: S): Reader<Out<S>> =>
  (v, name, e) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ApiError(e.invalid, `${name} must be an object`);
    return readFields(v as Record<string, unknown>, shape, e, `${name}.`);
  };

/**
 * Reads every declared field; refuses unknown ones (UnknownParameter) and absent required ones
 * (MissingParameter). JSON `null` counts as absent, as the SDKs drop null fields.
 */
export function readFields<S extends Shape>(params: Record<string, unknown>, shape: S, e: FieldErrors, prefix = ''): Out<S> {
  for (const key of Object.keys(params)) {
    if (!Object.hasOwn(shape, key)) throw new ApiError('UnknownParameter', `The parameter \`${prefix}${key}\` is not recognized`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(shape)) {
    const v = params[key];
    if (v === undefined || v === null) {
      if (field.required) throw new ApiError('MissingParameter', `The request is missing a required parameter \`${prefix}${key}\``);
      continue;
    }
    out[key] = field.read(v, `${prefix}${key}`, e);
  }
  return out as Out<S>;
}
