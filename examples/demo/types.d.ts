// What the demo's auth middleware puts on the request (as an existing app's auth would).
declare global {
  namespace Express {
    interface Request {
      user?: { id: string; dailyBudgetUsd: string };
    }
  }
}

export {};
