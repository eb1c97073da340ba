// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title KGST (dev stand-in)
/// @notice Minimal ERC-20 used on local chains in place of the real KGST BEP-20.
/// Self-contained on purpose: no external imports, so the compiled artifact
/// depends only on this file and the pinned compiler settings.
contract KGST {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    address public immutable owner;

    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    // ERC-6093 style errors, so callers can decode the reason without string parsing.
    error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
    error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
    error ERC20InvalidReceiver(address receiver);
    error ERC20InvalidSpender(address spender);
    error NotOwner(address caller);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        owner = msg.sender;
    }

    function mint(address to, uint256 amount) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        totalSupply += amount; // checked: caps total supply at 2^256-1
        unchecked {
            balanceOf[to] += amount; // cannot overflow: bounded by totalSupply
        }
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        if (spender == address(0)) revert ERC20InvalidSpender(address(0));
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        // Infinite approval is not decremented (same as OpenZeppelin) to save a write.
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert ERC20InsufficientAllowance(msg.sender, allowed, amount);
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        _transfer(from, to, amount);
        return true;
    }

    /// @dev `internal virtual` so the blacklist variant below can refuse accounts; KGST itself is unchanged.
    function _transfer(address from, address to, uint256 amount) internal virtual {
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 fromBalance = balanceOf[from];
        if (fromBalance < amount) revert ERC20InsufficientBalance(from, fromBalance, amount);
        unchecked {
            balanceOf[from] = fromBalance - amount;
            balanceOf[to] += amount; // cannot overflow: sum of balances <= totalSupply
        }
        emit Transfer(from, to, amount);
    }
}

/// @title KGST with an issuer blacklist (dev and test stand-in)
/// @notice Real stablecoins let their issuer freeze accounts (USDC's `blacklist`, USDT's `addBlackList`,
/// A7A5's blacklist): a transfer from or to a listed account reverts. A batch paying such a recipient
/// reverts whole, which is what the settlement engine's isolation of failing payouts is tested against.
/// KGST itself stays without the check, so its gas figures are those of a plain ERC-20.
contract KGSTWithBlacklist is KGST {
    mapping(address => bool) public isBlacklisted;

    event BlacklistSet(address indexed account, bool listed);

    error Blacklisted(address account);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) KGST(name_, symbol_, decimals_) {}

    function setBlacklisted(address account, bool listed) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        isBlacklisted[account] = listed;
        emit BlacklistSet(account, listed);
    }

    function _transfer(address from, address to, uint256 amount) internal override {
        if (isBlacklisted[from]) revert Blacklisted(from);
        if (isBlacklisted[to]) revert Blacklisted(to);
        super._transfer(from, to, amount);
    }
}
