"""Where residents live: Gangjin's eup/myeon divisions and their villages."""
