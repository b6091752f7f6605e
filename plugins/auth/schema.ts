import { z } from 'zod';

export const AuthOptions = z
  .object({
    /** The realm named in WWW-Authenticate challenges. */
    realm: z.string().regex(/^[\x20-\x21\x23-\x7e]+$/, 'printable ASCII without quotes').default('weir'),
  })
  .prefault({});

export type AuthOptions = z.infer<typeof AuthOptions>;
