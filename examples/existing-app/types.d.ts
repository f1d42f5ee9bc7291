// What the existing app's auth middleware puts on the request.
declare global {
  namespace Express {
    interface Request {
      account?: { id: string; name: string; teamId: string; plan: 'free' | 'pro' };
    }
  }
}

export {};
