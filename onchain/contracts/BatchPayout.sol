// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title BatchPayout
/// @notice Pays many KGST recipients in one transaction from a float this contract holds.
///
/// The treasury funds the contract with plain `token.transfer(address(this), x)`;
/// operators (hot wallets) call `payout`, which makes one `token.transfer(to, amount)`
/// per recipient, so the token emits one `Transfer(from = this contract, to, amount)`
/// per payout. `withdraw` (owner only) also emits `Transfer(from = this contract, ...)`;
/// tell those apart by the `Withdrawn` event in the same transaction.
///
/// Each batch is all-or-nothing and can be paid at most once: its `batchId` is
/// recorded in `paid`, so a second transaction carrying the same batch (whatever its
/// nonce or sender) reverts with `AlreadyPaid`.
///
/// The token must return `true` from `transfer` (KGST does); a token that returns
/// nothing (USDT-style) is treated as a failed transfer and is not supported.
///
/// The owner is fixed at deployment. To rotate it, deploy a new contract and have the
/// old owner `withdraw` the float to it.
contract BatchPayout {
    /// @dev `bytes4(keccak256("transfer(address,uint256)"))`, the one token function used.
    bytes4 private constant TRANSFER = 0xa9059cbb;

    /// @notice The one ERC-20 this contract pays out; fixed at deployment.
    address public immutable token;
    /// @notice Treasury: manages operators and sweeps the float.
    address public immutable owner;

    mapping(address => bool) public isOperator;
    /// @notice batchId => already paid. Set before any transfer of the batch.
    mapping(bytes32 => bool) public paid;

    event BatchPaid(bytes32 indexed batchId, uint256 count, uint256 total);
    event OperatorSet(address indexed operator, bool enabled);
    event Withdrawn(address indexed to, uint256 amount);

    error NotOwner(address caller);
    error NotOperator(address caller);
    error AlreadyPaid(bytes32 batchId);
    error EmptyBatch();
    /// @dev `unit` is 0, `width` is not 1-12, or `packed` is not whole entries of `20 + width` bytes.
    error BadPacking();
    error NotAContract(address token);
    error ZeroAddress();
    /// @dev Entry `index` of the batch failed (token reverted or did not return true),
    /// e.g. because the float is short; nothing in the batch was paid.
    error TransferFailed(uint256 index, address to, uint256 amount);
    error WithdrawFailed(address to, uint256 amount);

    constructor(address token_, address owner_) {
        if (owner_ == address(0)) revert ZeroAddress();
        // A call to an address without code "succeeds" with no return data.
        if (token_.code.length == 0) revert NotAContract(token_);
        token = token_;
        owner = owner_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    function setOperator(address operator, bool enabled) external onlyOwner {
        isOperator[operator] = enabled;
        emit OperatorSet(operator, enabled);
    }

    /// @notice Sweep `amount` of the float to `to` (back to the treasury, say).
    function withdraw(address to, uint256 amount) external onlyOwner {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(TRANSFER, to, amount));
        if (!ok || ret.length < 32 || abi.decode(ret, (uint256)) != 1) revert WithdrawFailed(to, amount);
        emit Withdrawn(to, amount);
    }

    /// @notice Pay batch `batchId`: one token transfer per entry of `packed`, all or none.
    /// @param unit Every amount of the batch is a whole number of `unit` base units (the engine passes
    /// the greatest common divisor of the batch's amounts, e.g. 10^16 for amounts in tiyin of an
    /// 18-decimal token).
    /// @param width Bytes of each entry's `units` (1 to 12): the fewest that hold the batch's largest.
    /// @param packed The entries back to back, `20 + width` bytes each: the recipient's 20 bytes, then
    /// `units` big-endian in `width` bytes; the payout is `units * unit`.
    /// Gas: calldata costs 16 per non-zero byte and 4 per zero byte. Small `units` (3 bytes for a tiyin
    /// amount) and no padding to 32 bytes make an entry 23 bytes, ~370 gas, where a word of
    /// `(amount << 160) | to` cost ~450. `units * unit` cannot wrap: the checked `totalUnits * unit` below
    /// reverts the whole batch if the largest product (the total) overflows.
    function payout(bytes32 batchId, uint256 unit, uint256 width, bytes calldata packed) external {
        if (!isOperator[msg.sender]) revert NotOperator(msg.sender);
        if (paid[batchId]) revert AlreadyPaid(batchId);
        if (packed.length == 0) revert EmptyBatch();
        uint256 stride = 20 + width;
        if (unit == 0 || width == 0 || width > 12 || packed.length % stride != 0) revert BadPacking();
        // Effects before interactions: a re-entrant payout of the same batch sees it paid.
        paid[batchId] = true;

        address token_ = token;
        uint256 totalUnits;
        uint256 at; // calldata offset of the entry being paid; below `end` after the loop if one failed
        uint256 end;
        // Gas: a high-level `IERC20(token).transfer(to, amount)` would re-check the token's code size
        // (done once, in the constructor) and ABI-encode/decode through fresh memory on every
        // iteration. Here one call buffer is reused and per entry only two words are written.
        assembly ("memory-safe") {
            // Scratch past the free-memory pointer (never allocated, so nothing to bump):
            // buf = selector | 12 zero bytes | to | amount (0x44 bytes).
            let buf := mload(0x40)
            mstore(buf, TRANSFER)
            mstore(add(buf, 0x04), 0) // the high 12 bytes of the `to` argument stay zero
            // The 32 bytes read at an entry, stored at buf+0x10, put `to` in place (bytes 0x10..0x24) without
            // masking; what follows it (units, the next entry) spills into the amount slot, written next.
            let toSlot := add(buf, 0x10)
            let amountSlot := add(buf, 0x24)
            let shift := sub(256, shl(3, width))
            at := packed.offset
            end := add(at, packed.length)
            for {} lt(at, end) { at := add(at, stride) } {
                // Past the end of calldata (the last entry's tail) reads as zeros, shifted out below.
                let word := calldataload(at)
                mstore(toSlot, word)
                let units := shr(shift, shl(160, word))
                mstore(amountSlot, mul(units, unit))
                // Success: the call did not revert AND returned the word 1 (`true`). The return word is
                // written over `toSlot`, which held this entry's bytes with `to` on top: a token that returns
                // nothing leaves them there, never 1 (that needs `to` = 0, which no transfer accepts), so it
                // counts as failed without a returndatasize check.
                let ok := call(gas(), token_, 0, buf, 0x44, toSlot, 0x20)
                if iszero(and(ok, eq(mload(toSlot), 1))) {
                    break
                }
                // Cannot overflow: fewer than 2^160 entries of less than 2^96 each.
                totalUnits := add(totalUnits, units)
            }
        }
        uint256 count = packed.length / stride;
        if (at < end) {
            uint256 index = count - (end - at) / stride;
            bytes calldata entry = packed[index * stride:(index + 1) * stride];
            uint256 units = uint256(bytes32(entry[20:])) >> (256 - 8 * width);
            revert TransferFailed(index, address(bytes20(entry[:20])), units * unit);
        }
        emit BatchPaid(batchId, count, totalUnits * unit);
    }
}
